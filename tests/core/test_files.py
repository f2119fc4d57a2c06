"""colbert_plugins.files: a directory is replaced whole, or not at all."""

from __future__ import annotations

import os
import pathlib

import pytest

from colbert_plugins import files
from colbert_plugins.files import replace_directory, sibling_directory


def make(path: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_text(text)
    return path


def test_a_new_target(tmp_path: pathlib.Path) -> None:
    staged = make(sibling_directory(tmp_path / "out"), "a.txt", "new")
    replace_directory(staged, tmp_path / "out", durable=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (tmp_path / "out" / "a.txt").read_text() == "new"


def test_a_failed_swap_puts_the_old_directory_back(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = make(tmp_path / "out", "old.txt", "old")
    staged = make(sibling_directory(target), "new.txt", "new")
    real = os.replace
    calls = []

    def failing_second(src: object, dst: object) -> None:
        calls.append((src, dst))
        if len(calls) == 2:  # the old one is aside; the new one fails to move in
            raise OSError("disk on fire")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(files.os, "replace", failing_second)
    with pytest.raises(OSError, match="disk on fire"):
        replace_directory(staged, target)
    assert (target / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".tmp")) == ["out"]


def test_siblings_have_the_umask_mode(tmp_path: pathlib.Path) -> None:
    old = os.umask(0o022)
    try:
        staged = sibling_directory(tmp_path / "out")
    finally:
        os.umask(old)
    assert staged.stat().st_mode & 0o777 == 0o755
