"""Tests for colbert_plugins.index: the in-process exact ColBERT index (unit: tiny model)."""

from __future__ import annotations

import json
import pathlib
import threading
from typing import Any

import numpy as np
import pytest

from colbert_plugins import ColBERT
from colbert_plugins.errors import ColBERTError, InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.index import (
    FORMAT_VERSION,
    ColBERTIndex,
    IndexedDocument,
    IndexFormatError,
    IndexMismatchError,
    InMemoryIndex,
    SearchHit,
    UnknownIdError,
    resolve_index,
)
from colbert_plugins.model import rank_order
from colbert_plugins.scoring import maxsim_scores, segmented_maxsim
from corpus import QUERIES, QUERY, TEXTS_WITH_TIE
from tiny_model import build_model_dir

TEXTS = TEXTS_WITH_TIE
IDS = [f"d{i}" for i in range(len(TEXTS))]
METADATAS: list[dict[str, Any]] = [
    {"n": i, "tags": ["x", "y"], "nested": {"a": [1, 2.5, None, True]}, "uni": "Zürich ✓"}
    for i in range(len(TEXTS))
]


@pytest.fixture
def index(tiny_model: ColBERT) -> InMemoryIndex:
    idx = InMemoryIndex(tiny_model)
    idx.add(TEXTS, ids=IDS, metadatas=METADATAS)
    return idx


def brute_force(model: ColBERT, query: str, texts: list[str], k: int) -> list[tuple[int, float]]:
    scores = model.score(query, texts)
    return [(i, float(scores[i])) for i in rank_order(scores, k)]


def check_exact(idx: InMemoryIndex, model: ColBERT, query: str, k: int = 100) -> None:
    """The index's ranking equals the brute-force MaxSim ranking of its documents."""
    docs = idx.get(idx.ids())
    expected = brute_force(model, query, [d.text for d in docs], k)
    hits = idx.search(query, k=k)
    assert [h.id for h in hits] == [docs[i].id for i, _ in expected]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], rtol=1e-6)


# -- adding and searching ----------------------------------------------------------------------


def test_add_returns_ids_and_len(tiny_model: ColBERT) -> None:
    idx = InMemoryIndex(tiny_model)
    assert len(idx) == 0 and idx.ids() == []
    ids = idx.add(TEXTS[:3])
    assert len(ids) == 3 and len(set(ids)) == 3 and all(isinstance(i, str) for i in ids)
    assert len(idx) == 3 and idx.ids() == ids
    assert idx.add([]) == []
    assert ids[0] in idx and "nope" not in idx and 3 not in idx
    assert "documents=3" in repr(idx)


@pytest.mark.parametrize("query", QUERIES)
def test_search_matches_brute_force(index: InMemoryIndex, tiny_model: ColBERT, query: str) -> None:
    check_exact(index, tiny_model, query)


def test_search_hits(index: InMemoryIndex, tiny_model: ColBERT) -> None:
    hits = index.search(QUERY, k=3)
    assert len(hits) == 3 and all(isinstance(h, SearchHit) for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        i = IDS.index(h.id)
        assert h.text == TEXTS[i] and h.metadata == METADATAS[i]
    # Ties keep insertion order: the duplicate d4 right after d1.
    all_hits = [h.id for h in index.search(QUERY, k=100)]
    assert all_hits.index("d4") == all_hits.index("d1") + 1
    assert len(all_hits) == len(TEXTS)  # k larger than the index


def test_search_vectors_equals_search(index: InMemoryIndex, tiny_model: ColBERT) -> None:
    qv = tiny_model.encode_queries([QUERY])[0]
    assert index.search_vectors(qv, k=4) == index.search(QUERY, k=4)
    with pytest.raises(InvalidArgumentError, match="query vectors"):
        index.search_vectors(np.zeros((3, tiny_model.dim + 1), np.float32), k=1)


def test_hits_are_copies(index: InMemoryIndex) -> None:
    hit = index.search(QUERY, k=1)[0]
    hit.metadata["nested"]["a"].append("changed")
    hit.metadata["new"] = 1
    assert index.get([hit.id])[0].metadata == METADATAS[IDS.index(hit.id)]


def test_add_copies_metadata(tiny_model: ColBERT) -> None:
    meta = {"list": [1]}
    idx = InMemoryIndex(tiny_model)
    idx.add(["hello world"], ids=["a"], metadatas=[meta])
    meta["list"].append(2)
    assert idx.get(["a"])[0].metadata == {"list": [1]}


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one(index: InMemoryIndex, k: int) -> None:
    with pytest.raises(InvalidArgumentError, match="k must be >= 1"):
        index.search(QUERY, k=k)


@pytest.mark.parametrize("k", [None, 1.5, "3", True])
def test_k_wrong_type(index: InMemoryIndex, k: Any) -> None:
    with pytest.raises(InvalidArgumentTypeError):
        index.search(QUERY, k=k)


def test_empty_index_search(tiny_model: ColBERT) -> None:
    idx = InMemoryIndex(tiny_model)
    assert idx.search(QUERY, k=5) == []
    assert idx.search_vectors(tiny_model.encode_queries([QUERY])[0], k=5) == []
    with pytest.raises(InvalidArgumentError):
        idx.search(QUERY, k=0)  # still validated
    with pytest.raises(InvalidArgumentTypeError):
        idx.search(None, k=1)  # type: ignore[arg-type]


def test_normalized_scores(tiny_model_dir: pathlib.Path) -> None:
    model = ColBERT.from_pretrained(
        tiny_model_dir, query_length=8, threads=1, cache=False, normalize_scores=True
    )
    idx = InMemoryIndex(model)
    idx.add(TEXTS, ids=IDS)
    check_exact(idx, model, QUERY)
    assert all(-1.0 <= h.score <= 1.0 for h in idx.search(QUERY, k=10))


# -- replacing, deleting, getting --------------------------------------------------------------


def test_readd_replaces(index: InMemoryIndex, tiny_model: ColBERT) -> None:
    before = {h.id: h.score for h in index.search(QUERY, k=100)}
    index.add(["the lazy dog"], ids=["d1"], metadatas=[{"new": True}])
    assert len(index) == len(TEXTS)
    assert index.ids() == [i for i in IDS if i != "d1"] + ["d1"]  # replaced: moved last
    assert index.get(["d1"]) == [IndexedDocument("d1", "the lazy dog", {"new": True})]
    after = {h.id: h.score for h in index.search(QUERY, k=100)}
    assert after["d1"] != pytest.approx(before["d1"])
    assert after["d4"] == pytest.approx(before["d4"])
    check_exact(index, tiny_model, QUERY)
    # Adding the same documents again is idempotent.
    index.add(TEXTS, ids=IDS, metadatas=METADATAS)
    index.add(TEXTS, ids=IDS, metadatas=METADATAS)
    assert len(index) == len(TEXTS) and index.ids() == IDS
    check_exact(index, tiny_model, QUERY)


def test_delete(index: InMemoryIndex, tiny_model: ColBERT) -> None:
    index.delete(["d1", "d3"])
    assert len(index) == len(TEXTS) - 2
    assert "d1" not in index and "d3" not in index
    assert {h.id for h in index.search(QUERY, k=100)} == set(IDS) - {"d1", "d3"}
    check_exact(index, tiny_model, QUERY)
    index.delete([])  # no-op
    index.delete(["d0", "d0"])  # repeated ids: once
    assert len(index) == len(TEXTS) - 3


def test_delete_unknown_ids(index: InMemoryIndex) -> None:
    with pytest.raises(UnknownIdError, match="'zz'") as info:
        index.delete(["d0", "zz", "yy"])
    assert info.value.missing == ["zz", "yy"]
    assert isinstance(info.value, LookupError) and isinstance(info.value, ColBERTError)
    assert len(index) == len(TEXTS) and "d0" in index  # nothing deleted
    index.delete(["d0", "zz"], missing_ok=True)
    assert len(index) == len(TEXTS) - 1 and "d0" not in index
    with pytest.raises(UnknownIdError):
        index.delete(["d0"])  # already gone


def test_delete_everything_then_reuse(index: InMemoryIndex, tiny_model: ColBERT) -> None:
    index.clear()
    assert len(index) == 0 and index.search(QUERY, k=3) == []
    index.add(TEXTS[:2], ids=["x", "y"])
    assert index.ids() == ["x", "y"]
    check_exact(index, tiny_model, QUERY)


def test_get(index: InMemoryIndex) -> None:
    docs = index.get(["d2", "d0"])
    assert [d.id for d in docs] == ["d2", "d0"]
    assert docs[0] == IndexedDocument("d2", TEXTS[2], METADATAS[2])
    with pytest.raises(UnknownIdError):
        index.get(["d2", "missing"])
    assert [d.id for d in index.get(["missing", "d2"], missing_ok=True)] == ["d2"]
    assert index.get([]) == []
    with pytest.raises(InvalidArgumentTypeError, match="single str"):
        index.get("d2")
    with pytest.raises(InvalidArgumentTypeError, match=r"ids\[0\]"):
        index.get([2])  # type: ignore[list-item]


def test_get_vectors(index: InMemoryIndex, tiny_model: ColBERT) -> None:
    (got,) = index.get_vectors(["d3"])
    np.testing.assert_array_equal(got, tiny_model.encode_documents([TEXTS[3]])[0])
    with pytest.raises(UnknownIdError):
        index.get_vectors(["nope"])


def test_compaction_keeps_results(tiny_model: ColBERT) -> None:
    idx = InMemoryIndex(tiny_model)
    texts = [f"{w} is the capital of {c}" for w in ("paris", "berlin", "london") for c in "abc"]
    ids = [f"t{i}" for i in range(len(texts))]
    for _ in range(3):  # replace everything several times: dead rows pile up, then compact
        idx.add(texts, ids=ids)
    idx.delete(ids[:6])
    state = idx._state
    assert state.slots < 3 * len(texts)  # compacted at least once
    assert state.dead_tokens * 2 <= state.tokens
    assert idx.ids() == ids[6:]
    check_exact(idx, tiny_model, QUERY)


# -- bad inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"texts": "one text"}, InvalidArgumentTypeError, "texts must be a list"),
        ({"texts": ["a", None]}, InvalidArgumentTypeError, r"texts\[1\]"),
        ({"texts": ["a", "b"], "ids": ["x"]}, InvalidArgumentError, "2 texts but 1 ids"),
        ({"texts": ["a", "b"], "ids": ["x", "x"]}, InvalidArgumentError, "unique"),
        ({"texts": ["a"], "ids": [""]}, InvalidArgumentError, "non-empty"),
        ({"texts": ["a"], "ids": [1]}, InvalidArgumentTypeError, r"ids\[0\]"),
        ({"texts": ["a"], "metadatas": [{}, {}]}, InvalidArgumentError, "1 texts but 2"),
        ({"texts": ["a"], "metadatas": {"k": 1}}, InvalidArgumentTypeError, "list of dicts"),
        ({"texts": ["a"], "metadatas": ["x"]}, InvalidArgumentTypeError, r"metadatas\[0\]"),
        ({"texts": ["a"], "metadatas": [{1: "x"}]}, InvalidArgumentTypeError, "keys must be str"),
    ],
)
def test_add_bad_inputs(
    tiny_model: ColBERT, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    idx = InMemoryIndex(tiny_model)
    with pytest.raises(error, match=match):
        idx.add(**kwargs)
    assert len(idx) == 0


def test_bad_constructor_args(tiny_model: ColBERT) -> None:
    with pytest.raises(InvalidArgumentTypeError):
        InMemoryIndex("a model name")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="float32 or float16"):
        InMemoryIndex(tiny_model, dtype="int8")
    with pytest.raises(InvalidArgumentTypeError):
        InMemoryIndex(tiny_model, dtype=object())
    with pytest.raises(TypeError):
        ColBERTIndex()  # type: ignore[abstract]


def test_resolve_index(tiny_model: ColBERT, tiny_model_dir: pathlib.Path) -> None:
    idx = InMemoryIndex(tiny_model)
    assert resolve_index(None, idx) is idx
    assert resolve_index(tiny_model, idx) is idx
    assert isinstance(resolve_index(tiny_model, None), InMemoryIndex)
    loaded = resolve_index(tiny_model_dir, None, {"query_length": 8, "cache": False})
    assert loaded.model.config.query_length == 8
    with pytest.raises(InvalidArgumentError, match="give model"):
        resolve_index(None, None)
    with pytest.raises(InvalidArgumentError, match="not both"):
        resolve_index(ColBERT.from_pretrained(tiny_model_dir, cache=False), idx)
    with pytest.raises(InvalidArgumentError, match="model_kwargs"):
        resolve_index(tiny_model, None, {"threads": 1})
    with pytest.raises(InvalidArgumentTypeError):
        resolve_index(None, "index")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError):
        resolve_index(42, None)  # type: ignore[arg-type]


# -- scoring internals -------------------------------------------------------------------------


@pytest.mark.parametrize("block_tokens", [1, 3, 7, 64, 65_536])
def test_segmented_maxsim_matches_maxsim_scores(block_tokens: int) -> None:
    rng = np.random.default_rng(block_tokens)
    lengths = [5, 0, 1, 12, 3, 0, 8, 2]
    docs = [rng.standard_normal((n, 6)).astype(np.float32) for n in lengths]
    query = rng.standard_normal((4, 6)).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    got = segmented_maxsim(query, np.concatenate(docs), offsets, block_tokens=block_tokens)
    np.testing.assert_allclose(got, maxsim_scores(query, docs), rtol=1e-5)
    assert got[1] == -np.inf and got[5] == -np.inf
    # float16 storage is scored in float32.
    half = segmented_maxsim(query, np.concatenate(docs).astype(np.float16), offsets, block_tokens)
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, got, atol=0.05)


def test_float16_agrees_with_float32(tiny_model: ColBERT) -> None:
    full = InMemoryIndex(tiny_model)
    half = InMemoryIndex(tiny_model, dtype="float16")
    texts = TEXTS + [f"the {w} of {c}" for w in ("city", "river", "capital") for c in "xyz"]
    ids = [f"i{i}" for i in range(len(texts))]
    full.add(texts, ids=ids)
    half.add(texts, ids=ids)
    assert half._state.buffer.dtype == np.float16 and half.dtype == np.float16
    assert half.nbytes * 2 == full.nbytes
    for query in QUERIES:
        a = {h.id: h.score for h in full.search(query, k=100)}
        b = {h.id: h.score for h in half.search(query, k=100)}
        assert a.keys() == b.keys()
        for doc_id, score in a.items():
            assert b[doc_id] == pytest.approx(score, abs=2e-3 * len(query.split()) + 1e-2)
        # Top 3 agree wherever the float32 gaps are larger than the float16 error.
        top_a = list(a)[:3]
        gaps = np.diff([a[i] for i in list(a)[:4]])
        if np.all(np.abs(gaps) > 0.05):
            assert list(b)[:3] == top_a


# -- persistence -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_save_load_round_trip(
    index: InMemoryIndex, tiny_model: ColBERT, tmp_path: pathlib.Path, dtype: str
) -> None:
    source = InMemoryIndex(tiny_model, dtype=dtype)
    source.add(TEXTS, ids=IDS, metadatas=METADATAS)
    source.delete(["d2"])  # dead slots are not saved
    source.add(["a replaced text"], ids=["d5"], metadatas=[{"replaced": [1, 2]}])
    path = source.save(tmp_path / "idx")
    assert sorted(p.name for p in path.iterdir()) == [
        "documents.jsonl",
        "manifest.json",
        "offsets.npy",
        "vectors.npy",
    ]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["count"] == len(source) and manifest["dim"] == tiny_model.dim
    assert manifest["model_key"] == tiny_model.model_key and manifest["dtype"] == dtype
    assert manifest["model_name"] == tiny_model.name

    loaded = InMemoryIndex.load(path, tiny_model)
    assert loaded.dtype.name == dtype
    assert loaded.ids() == source.ids()
    assert loaded.get(loaded.ids()) == source.get(source.ids())  # texts and metadata equal
    vectors = zip(loaded.get_vectors(loaded.ids()), source.get_vectors(source.ids()), strict=True)
    for a, b in vectors:
        np.testing.assert_array_equal(a, b)
    for query in QUERIES:
        # Same hits in the same order; scores equal to rounding (the loaded index holds no
        # dead slot, so its blocks, and the products' float rounding, may differ by an ulp).
        got, want = loaded.search(query, k=100), source.search(query, k=100)
        assert [(h.id, h.text, h.metadata) for h in got] == [
            (h.id, h.text, h.metadata) for h in want
        ]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], rtol=1e-6)
    # A loaded index is a normal index: it can grow and be saved again.
    loaded.add(["one more"], ids=["new"])
    loaded.save(path)
    assert InMemoryIndex.load(path, tiny_model).ids() == [*source.ids(), "new"]
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]  # no temporary leftovers
    converted = InMemoryIndex.load(path, tiny_model, dtype="float32")
    assert converted.dtype == np.float32


def test_save_empty_index(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    InMemoryIndex(tiny_model).save(tmp_path / "empty")
    loaded = InMemoryIndex.load(tmp_path / "empty", tiny_model)
    assert len(loaded) == 0 and loaded.search(QUERY, k=3) == []


def test_save_refuses_foreign_directory(index: InMemoryIndex, tmp_path: pathlib.Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("keep me")
    with pytest.raises(InvalidArgumentError, match="not a saved index"):
        index.save(tmp_path / "data")
    assert (tmp_path / "data" / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("bad", [(1, 2), float("nan"), object(), {1: "int key"}])
def test_save_refuses_metadata_that_json_would_change(
    tiny_model: ColBERT, tmp_path: pathlib.Path, bad: Any
) -> None:
    idx = InMemoryIndex(tiny_model)
    idx.add(["hello"], ids=["a"], metadatas=[{"value": bad}])
    with pytest.raises(InvalidArgumentTypeError, match="'a'"):
        idx.save(tmp_path / "idx")
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary leftovers


def test_load_into_other_model(
    index: InMemoryIndex, tmp_path: pathlib.Path, tiny_model_dir: pathlib.Path
) -> None:
    path = index.save(tmp_path / "idx")
    other_dim = ColBERT.from_pretrained(
        build_model_dir(tmp_path / "dim16", dim=16), query_length=8, cache=False
    )
    with pytest.raises(IndexMismatchError, match="8-dim vectors") as info:
        InMemoryIndex.load(path, other_dim)
    assert isinstance(info.value, ColBERTError)
    with pytest.raises(IndexMismatchError):
        InMemoryIndex.load(path, other_dim, check_model_key=False)  # dim is always checked
    other_weights = ColBERT.from_pretrained(
        build_model_dir(tmp_path / "seed1", seed=1), query_length=8, cache=False
    )
    with pytest.raises(IndexMismatchError, match="check_model_key=False"):
        InMemoryIndex.load(path, other_weights)
    assert len(InMemoryIndex.load(path, other_weights, check_model_key=False)) == len(TEXTS)
    # Document settings are part of the model key too.
    truncated = ColBERT.from_pretrained(tiny_model_dir, document_length=4, cache=False)
    with pytest.raises(IndexMismatchError):
        InMemoryIndex.load(path, truncated)


def _corrupt(path: pathlib.Path, name: str, edit: Any) -> None:
    target = path / name
    if name.endswith(".json"):
        data = json.loads(target.read_text())
        edit(data)
        target.write_text(json.dumps(data))
    else:
        edit(target)


@pytest.mark.parametrize(
    ("name", "edit", "match"),
    [
        ("manifest.json", lambda m: m.update(format_version=FORMAT_VERSION + 1), "version"),
        ("manifest.json", lambda m: m.update(format="other"), "not a colbert-plugins"),
        ("manifest.json", lambda m: m.update(count=99), "corrupt"),
        ("manifest.json", lambda m: m.pop("model_key"), "model_key"),
        ("manifest.json", lambda m: m.update(dtype="int8"), "dtype"),
        ("documents.jsonl", lambda p: p.write_text(p.read_text().splitlines()[0]), "corrupt"),
        ("documents.jsonl", lambda p: p.write_text("{broken\n"), "cannot read"),
        ("vectors.npy", lambda p: np.save(p, np.zeros((3, 8), np.float32)), "corrupt"),
        ("offsets.npy", lambda p: np.save(p, np.array([0, 1], np.int64)), "corrupt"),
        ("offsets.npy", lambda p: p.unlink(), "cannot read"),
        ("manifest.json", None, "not a saved index"),
    ],
)
def test_load_corrupt(
    index: InMemoryIndex,
    tiny_model: ColBERT,
    tmp_path: pathlib.Path,
    name: str,
    edit: Any,
    match: str,
) -> None:
    path = index.save(tmp_path / "idx")
    if edit is None:
        (path / name).unlink()
    else:
        _corrupt(path, name, edit)
    with pytest.raises(IndexFormatError, match=match):
        InMemoryIndex.load(path, tiny_model)


# -- concurrency -------------------------------------------------------------------------------


def test_readers_see_consistent_snapshots_while_a_writer_writes(tiny_model: ColBERT) -> None:
    """Searches during adds, replacements and deletes: every hit's score is the MaxSim of the
    text it comes with, and results are sorted; no reader ever fails."""
    pool = [f"{a} {b} {c}" for a in ("paris", "berlin", "the cat") for b in ("is", "sat on")
            for c in ("the mat", "france", "a river")]  # fmt: skip
    expected = dict(zip(pool, tiny_model.score(QUERY, pool).tolist(), strict=True))
    query_vectors = tiny_model.encode_queries([QUERY])[0]
    idx = InMemoryIndex(tiny_model)
    idx.add(pool[:5], ids=[f"p{i}" for i in range(5)], metadatas=[{"text": t} for t in pool[:5]])
    stop = threading.Event()
    errors: list[BaseException] = []
    searches = [0]

    def reader() -> None:
        try:
            while not stop.is_set():
                hits = idx.search_vectors(query_vectors, k=6)
                scores = [h.score for h in hits]
                assert scores == sorted(scores, reverse=True)
                assert len({h.id for h in hits}) == len(hits)
                for h in hits:
                    assert h.score == pytest.approx(expected[h.text], rel=1e-5)
                    assert h.metadata == {"text": h.text}
                searches[0] += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        rng = np.random.default_rng(0)
        for step in range(40):
            picks = rng.choice(len(pool), size=3, replace=False)
            ids = [f"p{(step * 7 + int(i)) % 20}" for i in picks]
            texts = [pool[int(i)] for i in picks]
            idx.add(texts, ids=ids, metadatas=[{"text": t} for t in texts])
            if step % 3 == 0:
                idx.delete(ids[:1], missing_ok=True)
            if errors:
                break
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert searches[0] > 0
    docs = idx.get(idx.ids())
    assert all(d.metadata == {"text": d.text} for d in docs)


def test_upsert_rejects_wrong_vectors(tiny_model: ColBERT) -> None:
    idx = InMemoryIndex(tiny_model)
    with pytest.raises(ColBERTError, match="shape"):
        idx._upsert(["a"], ["t"], [{}], [np.zeros((2, 3), np.float32)])


def test_retrieval_mode_is_colbert_only_without_qdrant(tiny_model: ColBERT) -> None:
    index = InMemoryIndex(tiny_model)
    index.add(["the cat sat", "a dog ran"], ids=["c", "d"])
    assert index.retrieval_modes == ("colbert",)
    assert index.search("cat", k=1, retrieval_mode="colbert") == index.search("cat", k=1)
    with pytest.raises(InvalidArgumentError, match="need a QdrantIndex"):
        index.search("cat", retrieval_mode="hybrid")
    with pytest.raises(InvalidArgumentError, match="retrieval_mode must be one of 'colbert'"):
        index.search_batch(["cat"], retrieval_mode="dense")
