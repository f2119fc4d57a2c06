"""Every code block of README.md and docs/*.md runs, or says why it cannot.

The rules (also in docs/development.md, "How the documentation is tested"):

- Every fenced block has a language. ``python`` and ``bash`` blocks are code: each runs on its
  own in an empty temporary directory that links the checkout's ``examples/``, ``benchmarks/``,
  ``scripts/``, ``src/`` and ``.venv`` (and ``../shared`` when the checkout has it), with this
  environment's ``bin/`` first on ``PATH`` and ``HF_HUB_OFFLINE=1``. A bash block runs in a
  new ``bash -euo pipefail`` and passes when it exits with status 0; a Python block runs in
  fresh globals (``__name__ == "__main__"``) in a worker process shared by the Python blocks
  (modules imported by an earlier block stay imported; names never carry over) and passes
  when it raises nothing.
- The default model's hub id (:data:`HUB_MODEL`) in a block stands for the test model: it is
  replaced by the directory in ``COLBERT_PLUGINS_TEST_MODEL`` (CI: the proxy model); without
  one the blocks are skipped, as every integration test is.
- A code block that cannot run here (GPU, the hub, PyTorch, a server on a fixed port) is marked
  by ``<!-- not run: REASON -->`` on the line just before its fence; the reason is required.
- ``json`` blocks must parse; ``text`` blocks (output, layouts) are not code.
- ``docs/cli.md`` names every command and option of the real parser, README.md's dependency
  table every requirement of ``pyproject.toml`` (core and runtime extras), and relative links
  in README.md point at files (and headings) that exist.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: The hub id that a block's text uses for "a ColBERT model": replaced by the test model.
HUB_MODEL = "answerdotai/answerai-colbert-small-v1"
CODE_LANGUAGES = {"python", "bash"}
DATA_LANGUAGES = {"json", "text"}
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>.*\S.*?) -->$")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+)(?P<info>.*)$")
#: What a block's directory links from the checkout (when present).
LINKED = ("examples", "benchmarks", "scripts", "src")
TIMEOUT_S = 300


@dataclasses.dataclass(frozen=True)
class Block:
    path: pathlib.Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    not_run: str | None  # the reason, when marked

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def parse(path: pathlib.Path, root: pathlib.Path = REPO) -> tuple[list[Block], list[str]]:
    """The fenced blocks of ``path``, and the problems of its markers and fences."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    rel = path.relative_to(root)
    i = 0
    while i < len(lines):
        line = lines[i]
        match = FENCE.match(line)
        marker = NOT_RUN.match(line.strip())
        if line.strip().startswith("<!-- not run") and marker is None:
            problems.append(f"{rel}:{i + 1}: write the marker as '<!-- not run: REASON -->'")
        if marker is not None:
            following = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
            if following is None:
                problems.append(f"{rel}:{i + 1}: a 'not run' marker must be just before a fence")
        if match is None:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        language = match["info"].strip().split(" ")[0] if match["info"].strip() else ""
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if end == len(lines):
            problems.append(f"{rel}:{i + 1}: the block is never closed")
            break
        body = [
            text[len(indent) :] if text.startswith(indent) else text for text in lines[i + 1 : end]
        ]
        before = NOT_RUN.match(lines[i - 1].strip()) if i > 0 else None
        blocks.append(
            Block(
                path, i + 1, language, "\n".join(body) + "\n", before["reason"] if before else None
            )
        )
        if not language:
            problems.append(f"{rel}:{i + 1}: give the block a language (python, bash, json, text)")
        elif language not in CODE_LANGUAGES | DATA_LANGUAGES:
            problems.append(f"{rel}:{i + 1}: unknown block language {language!r}")
        elif language in DATA_LANGUAGES and before is not None:
            problems.append(f"{rel}:{i + 1}: a {language} block is never run; drop the marker")
        i = end + 1
    return blocks, problems


def collect() -> tuple[list[Block], list[str]]:
    blocks: list[Block] = []
    problems: list[str] = []
    for path in DOC_FILES:
        found, trouble = parse(path)
        blocks.extend(found)
        problems.extend(trouble)
    return blocks, problems


BLOCKS, PROBLEMS = collect()
RUNNABLE = [b for b in BLOCKS if b.language in CODE_LANGUAGES and b.not_run is None]
MARKED = [b for b in BLOCKS if b.language in CODE_LANGUAGES and b.not_run is not None]


def test_every_code_block_runs_or_says_why_not() -> None:
    assert not PROBLEMS, "\n".join(PROBLEMS)
    code = [b for b in BLOCKS if b.language in CODE_LANGUAGES]
    assert len(code) == len(RUNNABLE) + len(MARKED)
    assert RUNNABLE, "no runnable block found: is the parser broken?"
    assert (REPO / "README.md") in {b.path for b in RUNNABLE}


def test_parser_classifies_blocks(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nprint(1)\n```\n\n"
        "<!-- not run: needs a GPU -->\n```bash\nnvidia-smi\n```\n\n"
        '  ```json\n  {"a": 1}\n  ```\n'
        "<!-- not run: orphan -->\n\n```\nno language\n```\n"
    )
    blocks, problems = parse(page, root=tmp_path)
    assert [(b.language, b.not_run) for b in blocks] == [
        ("python", None),
        ("bash", "needs a GPU"),
        ("json", None),
        ("", None),
    ]
    assert blocks[2].code == '{"a": 1}\n'
    assert any("just before a fence" in p for p in problems)
    assert any("give the block a language" in p for p in problems)


def test_json_blocks_parse() -> None:
    bad = []
    for block in (b for b in BLOCKS if b.language == "json"):
        try:
            json.loads(block.code)
        except json.JSONDecodeError as exc:
            bad.append(f"{block.name}: {exc}")
    assert not bad, "\n".join(bad)


@pytest.fixture
def block_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """An empty working directory beside a ``shared`` link, linking the checkout's scripts."""
    work = tmp_path / "checkout"
    work.mkdir()
    for name in LINKED:
        if (REPO / name).exists():
            (work / name).symlink_to(REPO / name)
    if sys.prefix != sys.base_prefix:  # the virtual environment the tests run in
        (work / ".venv").symlink_to(sys.prefix)
    if (REPO.parent / "shared").is_dir():
        (tmp_path / "shared").symlink_to(REPO.parent / "shared")
    return work


#: The Python blocks run in one worker process, each in fresh globals (so a block that does not
#: import or define a name fails as in a new interpreter) and its own working directory; only
#: the imported modules are shared, which saves the frameworks' imports (seconds) per block.
WORKER = r"""
import contextlib, io, json, os, sys, traceback
protocol = os.fdopen(os.dup(1), "w")
for request in sys.stdin:
    job = json.loads(request)
    os.chdir(job["cwd"])
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(compile(job["code"], job["name"], "exec"), {"__name__": "__main__"})
        error = None
    except BaseException:
        error = traceback.format_exc()
    protocol.write(json.dumps({"output": out.getvalue(), "error": error}) + "\n")
    protocol.flush()
"""


class PythonWorker:
    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def run(self, code: str, cwd: pathlib.Path, name: str) -> dict[str, str | None]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"code": code, "cwd": str(cwd), "name": name}) + "\n")
        self.process.stdin.flush()
        answer: list[str] = []
        reader = threading.Thread(target=lambda: answer.append(self.process.stdout.readline()))
        reader.start()
        reader.join(TIMEOUT_S)
        if not answer or not answer[0]:
            self.process.kill()
            return {"output": "", "error": f"no answer within {TIMEOUT_S} s (or the worker died)"}
        result: dict[str, str | None] = json.loads(answer[0])
        return result

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def block_env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PATH": str(pathlib.Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }


@pytest.fixture(scope="module")
def python_worker() -> Iterator[Callable[[], PythonWorker]]:
    """The worker, started on first use and again after a block killed it."""
    workers: list[PythonWorker] = []

    def get() -> PythonWorker:
        if not workers or workers[-1].process.poll() is not None:
            workers.append(PythonWorker(block_env()))
        return workers[-1]

    yield get
    for worker in workers:
        worker.close()


@pytest.mark.integration
@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.name)
def test_code_block_runs(
    block: Block,
    real_model_dir: pathlib.Path,
    block_dir: pathlib.Path,
    python_worker: Callable[[], PythonWorker],
) -> None:
    code = block.code.replace(HUB_MODEL, str(real_model_dir.resolve()))
    if block.language == "python":
        result = python_worker().run(code, block_dir, block.name)
        assert result["error"] is None, (
            f"{block.name} failed:\n--- output\n{result['output']}\n--- error\n{result['error']}"
        )
        return
    script = block_dir / "block.sh"
    script.write_text(code, encoding="utf-8")
    completed = subprocess.run(
        ["bash", "-euo", "pipefail", str(script)],
        cwd=block_dir,
        env=block_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert completed.returncode == 0, (
        f"{block.name} (bash) exited with {completed.returncode}:\n"
        f"--- stdout\n{completed.stdout[-3000:]}\n--- stderr\n{completed.stderr[-3000:]}"
    )


def _parser_names() -> tuple[set[str], set[str]]:
    """Every command (and index action) and every long option of the real CLI parser."""
    import argparse

    from colbert_plugins.cli import build_parser

    commands: set[str] = set()
    options: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            options.update(o for o in action.option_strings if o.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    commands.add(name)
                    walk(sub)

    walk(build_parser())
    options.discard("--help")
    return commands, options


def test_cli_reference_names_every_command_and_option() -> None:
    page = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    commands, options = _parser_names()
    assert commands and options
    missing_commands = sorted(c for c in commands if f"`{c}" not in page and f"## {c}" not in page)
    missing_options = sorted(o for o in options if not re.search(re.escape(o) + r"(?![\w-])", page))
    assert not missing_commands, f"docs/cli.md does not describe {missing_commands}"
    assert not missing_options, f"docs/cli.md does not name {missing_options}"


def slug(heading: str) -> str:
    """The anchor of a heading, as Python-Markdown's toc extension (mkdocs) and GitHub make it."""
    text = re.sub(r"[`*_\[\]()]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[\s]+", "-", text)


def anchors(path: pathlib.Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # headings only outside code
    return {slug(m[1]) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


def test_readme_links_resolve() -> None:
    readme = REPO / "README.md"
    text = re.sub(r"^```.*?^```", "", readme.read_text(encoding="utf-8"), flags=re.S | re.M)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local, "README.md links to no page of docs/"
    broken = []
    for target in local:
        file, _, anchor = target.partition("#")
        path = (REPO / file) if file else readme
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
            broken.append(target)
    assert not broken, f"README.md links to missing files or headings: {broken}"


def test_slug_matches_mkdocs() -> None:
    assert slug("Tuning: the goals and the recall/latency curve") == (
        "tuning-the-goals-and-the-recalllatency-curve"
    )
    assert slug("Exact: InMemoryIndex") == "exact-inmemoryindex"
    assert slug("Retrieval quality (trained model)") == "retrieval-quality-trained-model"


def test_readme_says_what_each_dependency_is_for() -> None:
    """Every requirement of the core and of each runtime extra is named in README's table."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip("tomli")
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| ")]
    missing = [
        name
        for name in (Requirement(r).name for r in project["dependencies"])
        if not any(row.startswith(f"| `{name}` |") for row in rows)
    ]
    for extra, requirements in project["optional-dependencies"].items():
        row = next((r for r in rows if re.search(rf"extras? [^|]*`{re.escape(extra)}`", r)), None)
        if row is None:
            missing.append(f"extra {extra}")
            continue
        for requirement in map(Requirement, requirements):
            if requirement.name != project["name"] and f"`{requirement.name}`" not in row:
                if extra in {"bench", "test", "dev", "examples"}:
                    continue  # these rows say what the extra is, not each package
                missing.append(f"{requirement.name} (extra {extra})")
    assert not missing, f"README.md's dependency table does not say what these are for: {missing}"
