"""Supply chain and data safety: model files are data, never code; the disk cache never lies.

- The library source contains no way to run code shipped with a model: no pickle, no
  ``np.load`` that allows pickles, no ``trust_remote_code``, no eval/exec/dynamic imports,
  no ONNX Runtime custom-op libraries (checked on the syntax tree of every module).
- A model directory or hub repo carrying a malicious ``modeling.py``, pickles (``*.pkl``,
  ``pytorch_model.bin``, an object ``.npy``) and ``auto_map`` entries loads and runs without
  importing or unpickling any of them; from the hub only the known data files are fetched.
- The SQLite embedding cache: a file overwritten with junk or truncated is moved aside with a
  warning and rebuilt (never a crash, never a wrong vector); a corrupt entry is recomputed;
  a writer killed with SIGKILL in the middle of ``put_many`` leaves a readable cache holding
  only whole transactions.
"""

from __future__ import annotations

import ast
import gc
import json
import logging
import os
import pathlib
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from typing import Any

import numpy as np
import pytest

import colbert_plugins
from colbert_plugins import ColBERT
from colbert_plugins.cache import EmbeddingCache, text_key
from colbert_plugins.errors import CacheError
from colbert_plugins.hub import CONFIG_FILES, ONNX_CANDIDATES, TOKENIZER_FILE
from tiny_model import build_model_dir, prefill_hf_cache

SOURCE = pathlib.Path(colbert_plugins.__file__).parent
DOCS = ["the cat sat on the mat", "paris is the capital of france", "", "hello world"]

# -- no code execution paths in the source ---------------------------------------------------

#: Modules whose import alone means deserializing or running foreign code.
FORBIDDEN_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "joblib",
    "marshal",
    "shelve",
    "runpy",
    "torch",
    "onnxruntime_extensions",
}
#: Modules allowed one forbidden import, and why. ``colbert-plugins export`` (the optional
#: ``export`` extra) runs PyLate, hence torch, to turn a checkpoint into ONNX; nothing in the
#: core imports it (the CLI imports it inside the ``export`` command only).
ALLOWED_IMPORTS = {("colbert_plugins/export/pylate.py", "torch")}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "execfile"}
FORBIDDEN_ATTRIBUTES = {
    "import_module",  # importlib.import_module(name from a file)
    "exec_module",
    "load_source",
    "register_custom_ops_library",  # native code from a model repo
    "unsafe_load",
    "full_load",
}


def python_sources() -> list[pathlib.Path]:
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 10, files
    return files


def violations(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{path.relative_to(SOURCE.parent)}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            where = path.relative_to(SOURCE.parent).as_posix()
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN_MODULES and (where, top) not in ALLOWED_IMPORTS:
                    report(node, f"imports {name}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                report(node, f"calls {func.id}()")
            if isinstance(func, ast.Attribute):
                if func.attr in FORBIDDEN_ATTRIBUTES:
                    report(node, f"calls .{func.attr}()")
                if func.attr == "load" and ast.unparse(func.value) in {"np", "numpy"}:
                    safe = any(
                        k.arg == "allow_pickle"
                        and isinstance(k.value, ast.Constant)
                        and k.value.value is False
                        for k in node.keywords
                    )
                    if not safe:
                        report(node, "np.load without allow_pickle=False")
                if func.attr == "load" and ast.unparse(func.value) == "yaml":
                    report(node, "yaml.load")
            for keyword in node.keywords:
                if keyword.arg in {"trust_remote_code", "allow_pickle"} and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    report(node, f"passes {keyword.arg}={ast.unparse(keyword.value)}")
        elif isinstance(node, ast.Constant) and node.value == "trust_remote_code":
            report(node, "mentions trust_remote_code")
    return found


def test_source_has_no_code_execution_paths() -> None:
    problems = [v for path in python_sources() for v in violations(path)]
    assert problems == []


def test_the_guard_catches_what_it_looks_for(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = textwrap.dedent(
        """
        import pickle
        from importlib import import_module
        import numpy as np
        np.load("x.npy")
        np.load("y.npy", allow_pickle=True)
        np.load("z.npy", allow_pickle=False)
        AutoModel.from_pretrained("m", trust_remote_code=True)
        eval("1")
        importlib.import_module(name)
        session_options.register_custom_ops_library(path)
        """
    )
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "bad.py").write_text(bad)
    monkeypatch.setattr(sys.modules[__name__], "SOURCE", package)
    found = "\n".join(violations(package / "bad.py"))
    for what in (
        "imports pickle",
        ":5: np.load without allow_pickle=False",
        ":6: np.load without allow_pickle=False",
        "passes allow_pickle=True",
        "passes trust_remote_code=True",
        "calls eval()",
        "calls .import_module()",
        "calls .register_custom_ops_library()",
    ):
        assert what in found, (what, found)
    assert ":7:" not in found  # np.load(..., allow_pickle=False) is fine


# -- a malicious model directory ---------------------------------------------------------------


class _Payload:
    """Unpickling this creates the sentinel file."""

    def __init__(self, sentinel: pathlib.Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> Any:
        return (open, (str(self.sentinel), "w"))


def add_malicious_files(directory: pathlib.Path, sentinel: pathlib.Path) -> None:
    touch = f"open({str(sentinel)!r}, 'w').write('imported')\n"
    payload = pickle.dumps(_Payload(sentinel))
    for name in ("modeling.py", "configuration_colbert.py", "tokenization_colbert.py"):
        (directory / name).write_text(touch + "class Evil:\n    pass\n")
    (directory / "__init__.py").write_text(touch)
    for name in ("model.pkl", "pytorch_model.bin", "training_args.bin", "optimizer.pt"):
        (directory / name).write_bytes(payload)
    # An object array saved with pickles, under the name the proxy model's projection uses.
    array = np.empty(1, dtype=object)
    array[0] = _Payload(sentinel)
    np.save(directory / "projection.npy", array, allow_pickle=True)
    auto_map = {"AutoModel": "modeling.Evil", "AutoConfig": "configuration_colbert.Evil"}
    for name in ("config.json", "tokenizer_config.json"):
        config = json.loads((directory / name).read_text())
        config.update(auto_map=auto_map, trust_remote_code=True)
        (directory / name).write_text(json.dumps(config))


def assert_nothing_ran(
    directory: pathlib.Path, sentinel: pathlib.Path, path_before: list[str]
) -> None:
    assert not sentinel.exists(), "code or a pickle from the model repo was executed"
    added = [p for p in sys.path if p not in path_before]
    assert not [p for p in added if p.startswith(str(directory))], added
    for module in list(sys.modules.values()):
        origin = getattr(module, "__file__", None) or ""
        assert not origin.startswith(str(directory)), f"imported {module!r} from the model"


def test_malicious_files_in_a_model_directory_are_never_run(tmp_path: pathlib.Path) -> None:
    directory = build_model_dir(tmp_path / "model")
    sentinel = tmp_path / "PWNED"
    add_malicious_files(directory, sentinel)
    path_before = list(sys.path)
    model = ColBERT.from_pretrained(directory, query_length=8)
    ranked = model.rerank("cat", DOCS)
    assert len(ranked) == len(DOCS)

    from colbert_plugins.langchain import ColBERTRerank as LangChainRerank
    from colbert_plugins.llama_index import ColBERTRerank as LlamaIndexRerank

    LangChainRerank(directory, query_length=8).rerank(DOCS, "cat")
    LlamaIndexRerank(model=directory, query_length=8).score("cat", DOCS)
    assert_nothing_ran(directory, sentinel, path_before)


def test_malicious_files_in_a_hub_repo_are_never_fetched_or_run(
    tmp_path: pathlib.Path, hub_offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    source = build_model_dir(tmp_path / "src", onnx_name="onnx/model.onnx", external_data=True)
    sentinel = tmp_path / "PWNED"
    add_malicious_files(source, sentinel)
    cache = tmp_path / "hf-cache"
    snapshot = prefill_hf_cache(cache, "evil-org/evil-colbert", source)
    requested: list[str] = []
    real_download = huggingface_hub.hf_hub_download

    def recording(repo_id: str, filename: str, **kwargs: Any) -> str:
        requested.append(filename)
        return str(real_download(repo_id, filename, **kwargs))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", recording)
    path_before = list(sys.path)
    model = ColBERT.from_pretrained("evil-org/evil-colbert", cache_dir=cache, query_length=8)
    assert len(model.rerank("cat", DOCS)) == len(DOCS)
    allowed = {TOKENIZER_FILE, *CONFIG_FILES, *ONNX_CANDIDATES}
    allowed |= {f"{name}_data" for name in ONNX_CANDIDATES}
    assert requested and set(requested) <= allowed, sorted(set(requested) - allowed)
    assert_nothing_ran(snapshot, sentinel, path_before)


# -- the disk cache: damaged files -------------------------------------------------------------


def reference_vectors(model_dir: pathlib.Path) -> list[np.ndarray]:
    return ColBERT.from_pretrained(model_dir, cache=False).encode_documents(DOCS)


def fill_cache(model_dir: pathlib.Path, path: pathlib.Path, n_extra: int = 0) -> None:
    """Persist DOCS (and more) to the cache file, all of it in the main file (checkpointed)."""
    model = ColBERT.from_pretrained(model_dir, cache=EmbeddingCache(path=path))
    model.encode_documents(DOCS + [f"document number {i} " * 5 for i in range(n_extra)])
    del model
    gc.collect()  # closes the model's connection
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def aside_files(path: pathlib.Path) -> list[pathlib.Path]:
    found = path.parent.glob(path.name + ".corrupt-*")
    return sorted(p for p in found if not p.name.endswith(("-wal", "-shm")))


@pytest.mark.parametrize("damage", ["junk", "zeros", "truncated-half", "header-only", "body-junk"])
def test_damaged_cache_file_is_moved_aside_and_rebuilt(
    tiny_model_dir: pathlib.Path,
    tmp_path: pathlib.Path,
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    path = tmp_path / "cache.sqlite"
    fill_cache(tiny_model_dir, path, n_extra=200)
    data = path.read_bytes()
    assert len(data) > 8 * 4096
    damaged = {
        "junk": np.random.default_rng(0).bytes(len(data)),
        "zeros": bytes(len(data)),
        "truncated-half": data[: len(data) // 2],
        "header-only": data[:100],
        "body-junk": data[:4096] + np.random.default_rng(1).bytes(len(data) - 4096),
    }[damage]
    path.write_bytes(damaged)
    expected = reference_vectors(tiny_model_dir)

    with caplog.at_level(logging.WARNING, logger="colbert_plugins.cache"):
        cache = EmbeddingCache(max_bytes=0, path=path)  # every lookup goes to the file
        model = ColBERT.from_pretrained(tiny_model_dir, cache=cache)
        for _ in range(2):  # computed, then read back from the rebuilt file
            got = model.encode_documents(DOCS)
            for g, e in zip(got, expected, strict=True):
                np.testing.assert_allclose(g, e, atol=1e-6)
    assert "is damaged" in caplog.text and "moved it to" in caplog.text
    (aside,) = aside_files(path)
    assert aside.read_bytes() == damaged  # kept for inspection, not deleted
    assert cache.stats().disk_hits == len(set(DOCS))
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM embeddings").fetchone() == (len(set(DOCS)),)


def test_damage_found_while_running_rebuilds_the_file(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache.sqlite"
    cache = EmbeddingCache(max_bytes=0, path=path)
    cache.put_many([("a", np.ones((2, 4), np.float32))])
    real_read = EmbeddingCache._read
    failures = iter([sqlite3.DatabaseError("database disk image is malformed")])

    def failing_once(self: EmbeddingCache, keys: Any) -> Any:
        error = next(failures, None)
        if error is not None:
            raise error
        return real_read(self, keys)

    monkeypatch.setattr(EmbeddingCache, "_read", failing_once)
    with caplog.at_level(logging.WARNING, logger="colbert_plugins.cache"):
        assert cache.get_many(["a"]) == [None]  # a miss, never an exception
    assert "is damaged" in caplog.text and len(aside_files(path)) == 1
    cache.put_many([("b", np.full((3, 4), 2.0, np.float32))])
    (b,) = cache.get_many(["b"])
    assert b is not None and b.shape == (3, 4) and float(b[0, 0]) == 2.0
    assert EmbeddingCache(path=path).get_many(["a", "b"])[1] is not None


def test_other_disk_errors_are_logged_and_served_from_memory(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache.sqlite"
    cache = EmbeddingCache(path=path)

    def locked(self: EmbeddingCache, items: Any) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(EmbeddingCache, "_write", locked)
    with caplog.at_level(logging.WARNING, logger="colbert_plugins.cache"):
        cache.put_many([("k", np.ones((1, 4), np.float32))])
    assert "database is locked" in caplog.text and "served without the disk cache" in caplog.text
    assert cache.get_many(["k"])[0] is not None  # kept in memory
    assert aside_files(path) == []  # not damage: the file is left alone


def test_unusable_cache_path_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(CacheError, match="cannot use"):
        EmbeddingCache(path=directory)


def test_corrupt_entry_in_a_models_cache_is_recomputed(
    tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "cache.sqlite"
    fill_cache(tiny_model_dir, path)
    model = ColBERT.from_pretrained(tiny_model_dir, cache=EmbeddingCache(path=path))
    key = text_key(model.model_key, DOCS[1])
    with closing(sqlite3.connect(path)) as db:
        (data,) = db.execute("SELECT data FROM embeddings WHERE key=?", (key,)).fetchone()
        flipped = np.frombuffer(data, "<f4").copy()
        flipped[0] = -flipped[0]  # plausible numbers, wrong checksum
        db.execute("UPDATE embeddings SET data=? WHERE key=?", (flipped.tobytes(), key))
        db.commit()
    got = model.encode_documents(DOCS)
    for g, e in zip(got, reference_vectors(tiny_model_dir), strict=True):
        np.testing.assert_allclose(g, e, atol=1e-6)
    assert model.cache is not None and model.cache.stats().corrupt == 1


# -- the disk cache: a writer killed mid-transaction --------------------------------------------

WRITER = """
import sys
import numpy as np
from colbert_plugins.cache import EmbeddingCache

path, batch = sys.argv[1], int(sys.argv[2])
cache = EmbeddingCache(max_bytes=0, path=path)
print("open", flush=True)
for b in range(10_000):
    items = []
    for i in range(batch):
        n = b * batch + i
        items.append((f"k{n}", np.full((128, 128), n, dtype=np.float32)))  # 64 KiB each
    cache.put_many(items)
    print("committed", b + 1, flush=True)
"""


@pytest.mark.parametrize("commits_before_kill", [0, 1, 3])
def test_writer_killed_mid_transaction_leaves_a_readable_cache(
    tmp_path: pathlib.Path, commits_before_kill: int
) -> None:
    path = tmp_path / "cache.sqlite"
    batch = 40  # 2.5 MiB per put_many: most of the writer's time is inside a transaction
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "open"
        for _ in range(commits_before_kill):
            assert writer.stdout.readline().startswith("committed")
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL

    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (rows,) = db.execute("SELECT count(*) FROM embeddings").fetchone()
    assert rows % batch == 0, f"{rows} rows: a transaction was applied in part"
    assert rows >= commits_before_kill * batch
    cache = EmbeddingCache(path=path)
    values = cache.get_many([f"k{n}" for n in range(rows)])
    assert cache.stats().corrupt == 0
    for n, value in enumerate(values):
        assert value is not None and value.shape == (128, 128)
        assert float(value[0, 0]) == n and float(value[-1, -1]) == n
    # The cache keeps working after the crash.
    cache.put_many([("after", np.ones((2, 2), np.float32))])
    assert EmbeddingCache(path=path).get_many(["after"])[0] is not None
