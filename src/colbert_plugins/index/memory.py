"""The in-process exact index: :class:`InMemoryIndex`.

Exact MaxSim over every document as a few large matrix products, vectors kept in float32 (or
float16 to halve memory, scored in float32), saved to and loaded from a directory. Safe to
search from several threads while another adds or deletes: every operation sees one
consistent snapshot. Also :func:`resolve_index`, the default index the retrievers build.

>>> index = InMemoryIndex(model)  # doctest: +SKIP
>>> index.add(["Paris is in France.", "Berlin is in Germany."], ids=["p", "b"])  # doctest: +SKIP
['p', 'b']
>>> index.search("capital of France", k=1)[0].id  # doctest: +SKIP
'p'

No framework import here: only numpy and the core.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..checks import check_optional_int
from ..errors import InvalidArgumentError, InvalidArgumentTypeError
from ..files import fsync_dir, fsync_file, replace_directory, sibling_directory
from ..model import ColBERT, FloatArray
from ..scoring import segmented_maxsim_batch
from .base import (
    ColBERTIndex,
    IndexedDocument,
    IndexFormatError,
    SearchHit,
    check_encoded,
    check_ids,
    check_index_model,
    check_known,
    check_manifest_fields,
    document_line,
    filter_predicate,
    locate,
    read_manifest_json,
    top_k,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "InMemoryIndex",
    "resolve_index",
]

logger = logging.getLogger(__name__)

#: ``format`` field of a saved index's manifest.
FORMAT_NAME = "colbert-plugins-index"
#: Version of the on-disk layout; :meth:`InMemoryIndex.load` refuses newer ones.
FORMAT_VERSION = 1

_MANIFEST = "manifest.json"
_VECTORS = "vectors.npy"
_OFFSETS = "offsets.npy"
_DOCUMENTS = "documents.jsonl"

_DTYPES: dict[str, np.dtype[Any]] = {
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
}

Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


# -- the in-process exact index ----------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    """An immutable snapshot of an :class:`InMemoryIndex`.

    Document ``i`` (a "slot") owns rows ``offsets[i]:offsets[i + 1]`` of ``buffer``. Deleted
    or replaced documents stay in their slot with ``live[i] = False`` until compaction. Rows of
    ``buffer`` past ``offsets[-1]`` are spare capacity that a later snapshot may fill; rows
    below it are never written again, so readers of this snapshot need no lock.
    """

    buffer: npt.NDArray[Any]
    offsets: Int64Array
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    metadatas: tuple[dict[str, Any], ...]
    live: BoolArray
    positions: dict[str, int]
    dead_tokens: int

    @property
    def slots(self) -> int:
        return len(self.ids)

    @property
    def tokens(self) -> int:
        return int(self.offsets[-1])


class InMemoryIndex(ColBERTIndex):
    """Exact ColBERT retrieval in process: MaxSim of the query against every document.

    All token vectors live in one matrix; a search reads it once, in cache-sized blocks of
    whole documents, each one matrix product and one segmented max (no Python loop per
    document): :func:`~colbert_plugins.scoring.segmented_maxsim_batch`. The product is most
    of the time: a search costs 0.74-1.21x the bare ``query @ vectors.T`` over the same
    blocks (``benchmarks/exact_index.py``). Several queries share one pass
    (:meth:`search_batch`, :meth:`search_vectors_batch`): the vectors are read once for all
    of them, in bigger products, which serves more queries per second. Best first; equal
    scores keep insertion order. A ``filter`` (see :func:`~colbert_plugins.index.check_filter`)
    selects documents before the top-k cut.

    Args:
        model: the :class:`~colbert_plugins.ColBERT` model that encodes documents and queries.
        dtype: ``"float32"`` (default, exact) or ``"float16"`` (half the memory, and as fast:
            each block is converted exactly to float32 in a reused buffer before its product;
            scores differ from float32 ones by about 1e-3, the float16 rounding of the
            vectors).
        blas_threads: BLAS threads a search may use (default 1; ``None``: leave BLAS's own
            setting). One thread is the robust choice: on 2 cores busy with other work (an
            encoder, another process), OpenBLAS's threads waited for each other and one search
            of 1M vectors took 960 ms on 2 threads against 180 ms on 1; on idle cores 2
            threads ran the product about 2x faster. Can be changed on the instance.

    Thread safety: any number of threads may search, get or save while one adds or deletes;
    each call works on one consistent snapshot (writers swap snapshots under a lock, readers
    never wait). Documents are encoded outside the lock.
    """

    def __init__(
        self,
        model: ColBERT,
        *,
        dtype: str | npt.DTypeLike = "float32",
        blas_threads: int | None = 1,
    ) -> None:
        if not isinstance(model, ColBERT):
            raise InvalidArgumentTypeError(
                f"model must be a ColBERT instance, got {type(model).__name__}"
            )
        check_optional_int(blas_threads, "blas_threads")
        self.model = model
        self.dtype = _check_dtype(dtype)
        self.blas_threads = blas_threads
        self._lock = threading.Lock()
        self._state = _State(
            buffer=np.zeros((0, model.dim), dtype=self.dtype),
            offsets=np.zeros(1, dtype=np.int64),
            ids=(),
            texts=(),
            metadatas=(),
            live=np.zeros(0, dtype=bool),
            positions={},
            dead_tokens=0,
        )

    def __repr__(self) -> str:
        state = self._state
        return (
            f"InMemoryIndex(model={self.model.name!r}, documents={len(state.positions)}, "
            f"tokens={state.tokens - state.dead_tokens}, dtype={self.dtype.name})"
        )

    # -- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._state.positions)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and doc_id in self._state.positions

    def ids(self) -> list[str]:
        """The ids of all documents, in insertion order (a replaced document moves last)."""
        state = self._state
        return [state.ids[i] for i in np.flatnonzero(state.live)]

    @property
    def nbytes(self) -> int:
        """Bytes of the stored token vectors (live documents only)."""
        state = self._state
        return (state.tokens - state.dead_tokens) * self.model.dim * self.dtype.itemsize

    def get(self, ids: Iterable[str], *, missing_ok: bool = False) -> list[IndexedDocument]:
        state = self._state
        return [
            IndexedDocument(doc_id, state.texts[slot], copy.deepcopy(state.metadatas[slot]))
            for doc_id, slot in locate(ids, state.positions, missing_ok=missing_ok)
        ]

    def get_vectors(self, ids: Iterable[str]) -> list[FloatArray]:
        """The stored token vectors of these documents (float32 copies), in the order given."""
        state = self._state
        return [
            state.buffer[state.offsets[slot] : state.offsets[slot + 1]].astype(np.float32)
            for _, slot in locate(ids, state.positions)
        ]

    def _search_vectors(
        self, query: FloatArray, k: int, filter: dict[str, Any] | None
    ) -> list[SearchHit]:
        return self._search_vectors_batch([query], k, filter)[0]

    def _search_vectors_batch(
        self, queries: list[FloatArray], k: int, checked: dict[str, Any] | None
    ) -> list[list[SearchHit]]:
        """Every query scored in one pass over the stored vectors (one matrix product per
        block for all of them); each list equals what :meth:`search_vectors` returns."""
        state = self._state  # one consistent snapshot for every query
        if not queries:
            return []
        slots = np.flatnonzero(state.live)
        if checked is not None and len(slots):
            matches = filter_predicate(checked)
            slots = slots[[matches(state.metadatas[s]) for s in slots]]
        if len(slots) == 0:
            return [[] for _ in queries]
        scores = segmented_maxsim_batch(
            queries, state.buffer, state.offsets, blas_threads=self.blas_threads
        )
        if self.model.config.normalize_scores:
            lengths = np.array([max(1, len(q)) for q in queries], dtype=np.float32)
            scores /= lengths[:, None]
        results = []
        for row in scores:
            top = top_k(row[slots], k)
            results.append(
                [
                    SearchHit(
                        id=state.ids[slot],
                        score=float(row[slot]),
                        text=state.texts[slot],
                        metadata=copy.deepcopy(state.metadatas[slot]),
                    )
                    for slot in (int(slots[i]) for i in top)
                ]
            )
        return results

    # -- writing ---------------------------------------------------------------------------------

    def _upsert(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        vectors: list[FloatArray],
    ) -> None:
        if not ids:
            return
        check_encoded(ids, vectors, self.model.dim)
        new_rows = np.concatenate(vectors, axis=0) if vectors else None
        lengths = np.fromiter((len(v) for v in vectors), dtype=np.int64, count=len(vectors))
        with self._lock:
            state = self._state
            replaced = [state.positions[i] for i in ids if i in state.positions]
            live = state.live.copy()
            dead = state.dead_tokens
            if replaced:
                live[replaced] = False
                dead += int(sum(state.offsets[s + 1] - state.offsets[s] for s in replaced))
            buffer = _append_rows(state.buffer, state.tokens, new_rows)
            start = state.slots
            positions = dict(state.positions)
            positions.update((doc_id, start + j) for j, doc_id in enumerate(ids))
            new_state = _State(
                buffer=buffer,
                offsets=np.concatenate([state.offsets, state.tokens + np.cumsum(lengths)]),
                ids=state.ids + tuple(ids),
                texts=state.texts + tuple(texts),
                metadatas=state.metadatas + tuple(metadatas),
                live=np.concatenate([live, np.ones(len(ids), dtype=bool)]),
                positions=positions,
                dead_tokens=dead,
            )
            self._state = _maybe_compact(new_state)

    def delete(self, ids: Iterable[str], *, missing_ok: bool = False) -> None:
        wanted = list(dict.fromkeys(check_ids(ids)))
        with self._lock:
            state = self._state
            check_known(wanted, state.positions, missing_ok=missing_ok)
            slots = [state.positions[i] for i in wanted if i in state.positions]
            if not slots:
                return
            live = state.live.copy()
            live[slots] = False
            positions = {i: s for i, s in state.positions.items() if live[s]}
            removed = int(sum(state.offsets[s + 1] - state.offsets[s] for s in slots))
            self._state = _maybe_compact(
                _State(
                    buffer=state.buffer,
                    offsets=state.offsets,
                    ids=state.ids,
                    texts=state.texts,
                    metadatas=state.metadatas,
                    live=live,
                    positions=positions,
                    dead_tokens=state.dead_tokens + removed,
                )
            )

    def clear(self) -> None:
        """Remove every document."""
        self.delete(self.ids())

    # -- persistence -----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index to directory ``path`` (created or replaced atomically).

        Layout: ``manifest.json`` (format version, model name, model key, dim, dtype, counts),
        ``vectors.npy`` (all token vectors, one matrix), ``offsets.npy`` (document ``i`` owns
        rows ``offsets[i]:offsets[i+1]``) and ``documents.jsonl`` (one ``{"id", "text",
        "metadata"}`` per line, in the same order). The files are written to a temporary
        sibling directory, flushed to disk, then renamed into place: readers never see a
        partial index. An existing directory at ``path`` is replaced only if it holds a saved
        index (anything else is refused).

        Metadata must survive a JSON round trip unchanged (str keys, lists rather than tuples,
        no NaN): otherwise :class:`~colbert_plugins.errors.InvalidArgumentTypeError` names the
        document and nothing is written.
        """
        target = Path(path)
        if target.exists() and not (target / _MANIFEST).is_file():
            raise InvalidArgumentError(
                f"{target} exists and is not a saved index; refusing to replace it"
            )
        state = self._state  # one consistent snapshot, no lock needed
        slots = np.flatnonzero(state.live)
        lengths = np.diff(state.offsets)
        rows = np.repeat(state.live, lengths)
        vectors = np.ascontiguousarray(state.buffer[: state.tokens][rows])
        offsets = np.concatenate([[0], np.cumsum(lengths[slots])]).astype(np.int64)
        lines = [document_line(state.ids[s], state.texts[s], state.metadatas[s]) for s in slots]
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "model_name": self.model.name,
            "model_key": self.model.model_key,
            "model_details": self.model.key_details(),
            "dim": self.model.dim,
            "dtype": self.dtype.name,
            "count": len(slots),
            "tokens": len(vectors),
            "normalize_scores": self.model.config.normalize_scores,
        }
        tmp = sibling_directory(target)
        try:
            with (tmp / _VECTORS).open("wb") as fh:
                np.save(fh, vectors, allow_pickle=False)
                fsync_file(fh)
            with (tmp / _OFFSETS).open("wb") as fh:
                np.save(fh, offsets, allow_pickle=False)
                fsync_file(fh)
            with (tmp / _DOCUMENTS).open("w", encoding="utf-8") as fh:
                for line in lines:
                    fh.write(line + "\n")
                fsync_file(fh)
            with (tmp / _MANIFEST).open("w", encoding="utf-8") as fh:  # written last
                json.dump(manifest, fh, indent=2)
                fh.write("\n")
                fsync_file(fh)
            fsync_dir(tmp)
            replace_directory(tmp, target, durable=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("saved %d documents (%d vectors) to %s", len(slots), len(vectors), target)
        return target

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        model: ColBERT,
        *,
        dtype: str | npt.DTypeLike | None = None,
        check_model_key: bool = True,
    ) -> InMemoryIndex:
        """Load an index saved by :meth:`save` for ``model``.

        Args:
            path: the directory given to :meth:`save`.
            model: the model to search with. Its vector size must equal the index's, and its
                ``model_key`` (graph, tokenizer and document settings) must match too, or
                :class:`IndexMismatchError` is raised: vectors of another model are not
                comparable with this model's queries.
            dtype: convert the stored vectors (default: keep the saved dtype).
            check_model_key: set ``False`` to accept a different ``model_key`` (e.g. the same
                model in a new directory whose files differ only in ways that do not change
                vectors); the vector size is always checked.
        """
        root = Path(path)
        manifest = _read_manifest(root)
        check_index_model(root, manifest, model, check_model_key)
        dim = model.dim
        try:
            vectors = np.load(root / _VECTORS, allow_pickle=False)
            offsets = np.load(root / _OFFSETS, allow_pickle=False)
            with (root / _DOCUMENTS).open(encoding="utf-8") as fh:
                records = [json.loads(line) for line in fh if line.strip()]
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"cannot read the index at {root}: {exc}") from exc
        count, tokens = manifest["count"], manifest["tokens"]
        problems = []
        if vectors.ndim != 2 or vectors.shape != (tokens, dim):
            problems.append(f"vectors have shape {vectors.shape}, expected ({tokens}, {dim})")
        if vectors.dtype.name != manifest["dtype"]:
            problems.append(f"vectors are {vectors.dtype}, manifest says {manifest['dtype']}")
        if (
            offsets.shape != (count + 1,)
            or offsets.dtype.kind not in "iu"
            or offsets[0] != 0
            or offsets[-1] != tokens
            or bool(np.any(np.diff(offsets) < 0))
        ):
            problems.append(f"offsets do not describe {count} documents over {tokens} rows")
        if len(records) != count:
            problems.append(f"{len(records)} documents listed, manifest says {count}")
        if problems:
            raise IndexFormatError(f"the index at {root} is corrupt: " + "; ".join(problems))
        try:
            ids = [r["id"] for r in records]
            texts = [r["text"] for r in records]
            metadatas = [r.get("metadata") or {} for r in records]
        except (KeyError, TypeError) as exc:
            raise IndexFormatError(f"the index at {root} has a malformed document line") from exc
        if len(set(ids)) != len(ids):
            raise IndexFormatError(f"the index at {root} lists some ids twice")
        index = cls(model, dtype=manifest["dtype"] if dtype is None else dtype)
        index._state = _State(
            buffer=np.ascontiguousarray(vectors, dtype=index.dtype),
            offsets=offsets.astype(np.int64),
            ids=tuple(ids),
            texts=tuple(texts),
            metadatas=tuple(metadatas),
            live=np.ones(count, dtype=bool),
            positions={doc_id: i for i, doc_id in enumerate(ids)},
            dead_tokens=0,
        )
        return index


# -- helpers -----------------------------------------------------------------------------------


def resolve_index(
    model: ColBERT | str | os.PathLike[str] | None,
    index: ColBERTIndex | None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> ColBERTIndex:
    """The index a retriever builder fills: ``index`` as given, or a new :class:`InMemoryIndex`
    for ``model`` (a :class:`ColBERT`, or a name or directory loaded with ``model_kwargs``)."""
    kwargs = dict(model_kwargs or {})
    if index is not None:
        if not isinstance(index, ColBERTIndex):
            raise InvalidArgumentTypeError(
                f"index must be a ColBERTIndex (e.g. InMemoryIndex), got {type(index).__name__}"
            )
        if model is not None and model is not index.model:
            raise InvalidArgumentError("give a model or an index, not both (the index has one)")
        if kwargs:
            raise InvalidArgumentError("model_kwargs only apply when a model is loaded by name")
        return index
    if model is None:
        raise InvalidArgumentError(
            "give model= (a ColBERT instance, a model name or a directory) or index="
        )
    if isinstance(model, ColBERT):
        if kwargs:
            raise InvalidArgumentError(
                "model_kwargs only apply when the model is loaded from a name or path, not to a "
                "ColBERT instance"
            )
        return InMemoryIndex(model)
    if isinstance(model, str | os.PathLike):
        return InMemoryIndex(ColBERT.from_pretrained(model, **kwargs))
    raise InvalidArgumentTypeError(
        f"model must be a ColBERT instance, a model name or a directory, got {type(model).__name__}"
    )


def _check_dtype(dtype: Any) -> np.dtype[Any]:
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise InvalidArgumentTypeError(f"dtype must be float32 or float16, got {dtype!r}") from exc
    if resolved.name not in _DTYPES:
        raise InvalidArgumentError(f"dtype must be float32 or float16, got {resolved.name}")
    return _DTYPES[resolved.name]


def _append_rows(
    buffer: npt.NDArray[Any], used: int, rows: npt.NDArray[Any] | None
) -> npt.NDArray[Any]:
    """``buffer`` with ``rows`` written after its first ``used`` rows, growing it (by
    doubling) when full. Rows below ``used`` are never modified: older snapshots stay valid."""
    if rows is None or len(rows) == 0:
        return buffer
    needed = used + len(rows)
    if needed > len(buffer):
        grown = np.empty((max(needed, 2 * len(buffer), 1024), buffer.shape[1]), buffer.dtype)
        grown[:used] = buffer[:used]
        buffer = grown
    buffer[used:needed] = rows
    return buffer


def _maybe_compact(state: _State) -> _State:
    """Drop dead documents once they hold more than half of the rows (amortized O(1))."""
    if state.dead_tokens * 2 <= state.tokens and state.slots - len(state.positions) <= max(
        1024, len(state.positions)
    ):
        return state
    slots = np.flatnonzero(state.live)
    lengths = np.diff(state.offsets)
    rows = np.repeat(state.live, lengths)
    kept = state.buffer[: state.tokens][rows]
    buffer = np.empty((max(len(kept), 1024), state.buffer.shape[1]), state.buffer.dtype)
    buffer[: len(kept)] = kept
    ids = tuple(state.ids[s] for s in slots)
    return _State(
        buffer=buffer,
        offsets=np.concatenate([[0], np.cumsum(lengths[slots])]).astype(np.int64),
        ids=ids,
        texts=tuple(state.texts[s] for s in slots),
        metadatas=tuple(state.metadatas[s] for s in slots),
        live=np.ones(len(slots), dtype=bool),
        positions={doc_id: i for i, doc_id in enumerate(ids)},
        dead_tokens=0,
    )


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / _MANIFEST
    manifest = read_manifest_json(path, f"{root} is not a saved index (no {_MANIFEST})")
    if manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path} is not a colbert-plugins index manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise IndexFormatError(
            f"{root} has index format version {version!r}; this version of colbert-plugins "
            f"reads version {FORMAT_VERSION} (upgrade colbert-plugins, or rebuild the index)"
        )
    check_manifest_fields(
        path, manifest, (("dim", int), ("count", int), ("tokens", int), ("model_key", str))
    )
    if manifest.get("dtype") not in _DTYPES:
        raise IndexFormatError(f"{path} has an unsupported dtype {manifest.get('dtype')!r}")
    return manifest
