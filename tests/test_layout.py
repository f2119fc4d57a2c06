"""The package's layout keeps its promises: arrows point into the core, no import cycles, and
every documented public name imports from its documented path.

The import graph is read from the source (``ast``), every import counted: at module level,
inside functions (lazy imports) and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

import colbert_plugins

SOURCE = pathlib.Path(colbert_plugins.__file__).parent
PACKAGE = "colbert_plugins"
#: Sub-packages that stand on the core; the core is every other module.
OUTER = ("langchain", "llama_index", "cli", "server", "export", "index")
#: What the two framework packages share (pydantic pieces): not core, imported by them only.
ADAPTERS_SHARED = {"colbert_plugins.components": "components"}
#: Which outer packages each may import (besides the core and itself).
ALLOWED = {
    "langchain": {"index", "components"},
    "llama_index": {"index", "components"},
    "components": set(),
    "cli": {"index", "server", "export"},
    "server": set(),
    "export": set(),
    "index": set(),
}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for p in sorted(SOURCE.rglob("*.py"))}


def imports_of(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" for a in node.names] + [module]
        else:
            continue
        for target in targets:
            while target and target not in known:  # a name inside a module: its module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def area(module: str) -> str:
    if module in ADAPTERS_SHARED:
        return ADAPTERS_SHARED[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in OUTER) else "core"


def test_the_graph_is_read() -> None:
    edges = graph()
    assert "colbert_plugins.model" in edges["colbert_plugins.langchain.compressor"]
    assert "colbert_plugins.checks" in edges["colbert_plugins.model"]
    # a lazy import inside a function counts too
    assert "colbert_plugins.explain" in edges["colbert_plugins.model"]


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_arrows_point_into_the_core() -> None:
    wrong = []
    for module, targets in graph().items():
        source = area(module)
        for target in targets:
            dest = area(target)
            if dest == "core" or dest == source:
                continue
            if source == "core" or dest not in ALLOWED[source]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_core_imports_no_framework() -> None:
    frameworks = {
        "langchain_core",
        "llama_index",
        "pydantic",
        "qdrant_client",
        "starlette",
        "torch",
    }
    wrong = []
    for name, path in modules().items():
        if area(name) != "core":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names.append(getattr(node, "module", None) or "")
                wrong += [f"{name}: {n}" for n in names if n.split(".")[0] in frameworks]
    assert wrong == []


#: The public import paths ../shared/DESIGN.md promises, and the names the README uses.
PUBLIC = {
    "colbert_plugins": ["ColBERT", "RerankResult", "ColBERTConfig", "ColBERTError", "errors"],
    "colbert_plugins.errors": ["ColBERTError", "MissingDependencyError", "EmptyQueryError"],
    "colbert_plugins.langchain": ["ColBERTRerank", "ColBERTEmbeddings", "ColBERTRetriever"],
    "colbert_plugins.llama_index": ["ColBERTRerank", "ColBERTEmbedding", "ColBERTRetriever"],
    "colbert_plugins.index": ["InMemoryIndex", "CompressedIndex", "ColBERTIndex", "SearchHit"],
    "colbert_plugins.index.qdrant": ["QdrantIndex"],
    "colbert_plugins.server": ["create_app", "serve", "ServerSettings"],
    "colbert_plugins.export": ["export_model", "ExportError", "ExportVerificationError"],
    "colbert_plugins.cli": ["main", "build_parser"],
    "colbert_plugins.cache": ["EmbeddingCache"],
    "colbert_plugins.scoring": ["maxsim_scores"],
    "colbert_plugins.pooling": ["Muvera"],
    "colbert_plugins.explain": ["explain", "top_spans"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_import(module: str) -> None:
    if module.endswith("qdrant"):
        pytest.importorskip("qdrant_client")
    if module == "colbert_plugins.server":
        pytest.importorskip("starlette")
    imported = importlib.import_module(module)
    missing = [name for name in PUBLIC[module] if not hasattr(imported, name)]
    assert missing == []
    exported = getattr(imported, "__all__", None)
    if exported is not None:
        assert [n for n in exported if not hasattr(imported, n)] == []
