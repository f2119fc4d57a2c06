"""The index interface: what every ColBERT index backend implements, and its checks.

- :class:`ColBERTIndex`: ``add``, ``delete``, ``search`` (and ``search_batch``), ``get``,
  ``ids``, ``len``; the LangChain and LlamaIndex retrievers take any implementation of it
  (:class:`~colbert_plugins.index.InMemoryIndex`,
  :class:`~colbert_plugins.index.qdrant.QdrantIndex`).
- :class:`SearchHit`, :class:`IndexedDocument`: what searches and lookups return.
- Metadata filters (:func:`check_filter`, :func:`matches_filter`): the one filter language
  every backend implements, in :mod:`.filters` (re-exported here).
- The index errors, and the argument checks the backends and retrievers share.

Import these from :mod:`colbert_plugins.index`, which re-exports them. No framework import
here: only numpy and the core.
"""

from __future__ import annotations

import copy
import json
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from ..checks import check_int, check_query
from ..errors import ColBERTError, InvalidArgumentError, InvalidArgumentTypeError
from ..model import ColBERT, FloatArray
from .filters import MetadataFilter, check_filter, filter_predicate, matches_filter

__all__ = [
    "ADD_CHUNK",
    "ColBERTIndex",
    "IndexFormatError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexedDocument",
    "MetadataFilter",
    "SearchHit",
    "UnknownIdError",
    "check_documents",
    "check_encoded",
    "check_filter",
    "check_ids",
    "check_json_metadata",
    "check_k",
    "check_known",
    "check_queries",
    "check_query_batch",
    "check_query_vectors",
    "document_line",
    "filter_predicate",
    "locate",
    "matches_filter",
    "top_k",
]

Position = TypeVar("Position")

#: Documents encoded per chunk by :meth:`ColBERTIndex.add` (bounds the vectors held at once).
ADD_CHUNK = 1024

# -- errors ------------------------------------------------------------------------------------


class IndexMismatchError(ColBERTError):
    """The index was built with another model (different vector size or model identity) than
    the one it is opened with: its vectors are not comparable with this model's queries."""


class IndexFormatError(ColBERTError):
    """A saved index is missing, incomplete, corrupt, or of an unsupported format version."""


class IndexLockedError(ColBERTError):
    """Another writer (a process, or another index object on the same directory) holds an
    index's write lock for longer than the writer asking for it was willing to wait."""


class UnknownIdError(ColBERTError, LookupError):
    """Some ids are not in the index. ``missing`` lists them (in the order given)."""

    def __init__(self, missing: Sequence[str]) -> None:
        self.missing = list(missing)
        shown = ", ".join(repr(i) for i in self.missing[:5])
        more = f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else ""
        super().__init__(
            f"{len(self.missing)} id(s) not in the index: {shown}{more} "
            "(pass missing_ok=True to ignore unknown ids)"
        )


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    """One search result: the document's id, its MaxSim score, its text and its metadata.

    ``metadata`` is the caller's own copy: changing it does not change the index.
    """

    id: str
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IndexedDocument:
    """A stored document as :meth:`ColBERTIndex.get` returns it (metadata is a copy)."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


# -- the interface -----------------------------------------------------------------------------


class ColBERTIndex(ABC):
    """Documents stored as ColBERT token vectors, searched by MaxSim.

    Documents have a string id (given, or a random UUID), a text and a JSON-like metadata
    dict. Adding a document whose id is already present replaces it. Scores follow the
    model's ``normalize_scores`` setting, exactly as :meth:`ColBERT.score` does.
    """

    model: ColBERT
    #: The ``retrieval_mode`` values :meth:`search` accepts: ColBERT (MaxSim) here;
    #: :class:`~colbert_plugins.index.qdrant.QdrantIndex` adds ``"bm25"`` and ``"hybrid"``.
    retrieval_modes: tuple[str, ...] = ("colbert",)

    def add(
        self,
        texts: Iterable[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int = 32,
        show_progress: bool = False,
    ) -> list[str]:
        """Encode and store documents; return their ids (in input order).

        Args:
            texts: the documents' texts.
            ids: one unique string id per text (default: random UUIDs). An id already in the
                index is replaced (text, vectors and metadata), so adding again is idempotent.
            metadatas: one mapping (or ``None``) per text, stored as a copy.
            batch_size: documents per encoder call.
            show_progress: show a progress bar while encoding.
        """
        texts, ids_list, metas = check_documents(texts, ids, metadatas)
        chunks = self._encode_chunks(texts, batch_size, show_progress)
        self._add_encoded(ids_list, texts, metas, chunks, show_progress=show_progress)
        return ids_list

    def _encode_chunks(
        self, texts: list[str], batch_size: int, show_progress: bool
    ) -> Iterator[tuple[slice, list[FloatArray]]]:
        """The documents of one :meth:`add` encoded a chunk at a time (lazily), each as its
        slice of ``texts`` and its vectors."""
        start = 0
        while start < len(texts):
            part = slice(start, start + self._chunk_size(start))
            yield (
                part,
                self.model.encode_documents(
                    texts[part], batch_size=batch_size, show_progress=show_progress
                ),
            )
            start = part.stop

    def _chunk_size(self, start: int) -> int:
        """Documents encoded at once from position ``start`` of an add: :data:`ADD_CHUNK`
        (bounds the vectors held at once)."""
        return ADD_CHUNK

    def _add_encoded(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        chunks: Iterator[tuple[slice, list[FloatArray]]],
        *,
        show_progress: bool = False,
    ) -> None:
        """Store the checked documents of one :meth:`add` as ``chunks`` encodes them; by
        default each chunk is one :meth:`_upsert`. ``show_progress``: what the add was given."""
        for part, vectors in chunks:
            self._upsert(ids[part], texts[part], metadatas[part], vectors)

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        filter: MetadataFilter | None = None,
        retrieval_mode: str | None = None,
    ) -> list[SearchHit]:
        """The ``k`` best documents for ``query``, best first (an empty index gives ``[]``).

        Args:
            query: the query text.
            k: how many documents to return at most.
            filter: only documents whose metadata matches (see :func:`check_filter`):
                ``{"source": "a.pdf"}`` (equality), ``{"year": [2023, 2024]}`` (membership),
                several fields must all hold. The filter is applied before the top-``k`` cut:
                ``k`` documents come back whenever ``k`` matching documents exist.
            retrieval_mode: one of :attr:`retrieval_modes` (``None``: the index's default,
                ``"colbert"`` here).
        """
        self.check_retrieval_mode(retrieval_mode)
        query = check_query(query)
        k = check_k(k)
        checked = check_filter(filter)
        if len(self) == 0:
            return []
        return self.search_vectors(self.model.encode_queries([query])[0], k, filter=checked)

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        filter: MetadataFilter | None = None,
        retrieval_mode: str | None = None,
    ) -> list[list[SearchHit]]:
        """:meth:`search` for several queries: one list of hits per query, in order.

        The queries are encoded together and scored by :meth:`search_vectors_batch`, which
        backends that can (:class:`~colbert_plugins.index.InMemoryIndex`) answer in one pass
        over the stored vectors. ``filter`` and ``retrieval_mode`` apply to every query.
        """
        self.check_retrieval_mode(retrieval_mode)
        texts = check_queries(queries)
        k = check_k(k)
        checked = check_filter(filter)
        if not texts or len(self) == 0:
            return [[] for _ in texts]
        return self.search_vectors_batch(self.model.encode_queries(texts), k, filter=checked)

    def search_vectors(
        self, query_vectors: FloatArray, k: int = 10, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """Like :meth:`search`, for an already encoded query (``model.encode_queries``): a
        ``[n, dim]`` array. The arguments are checked here; backends implement
        :meth:`_search_vectors`."""
        k = check_k(k)
        query = check_query_vectors(query_vectors, self.model.dim)
        return self._search_vectors(query, k, check_filter(filter))

    def search_vectors_batch(
        self,
        query_vectors: Sequence[FloatArray] | FloatArray,
        k: int = 10,
        *,
        filter: MetadataFilter | None = None,
    ) -> list[list[SearchHit]]:
        """:meth:`search_vectors` for several encoded queries: a list of ``[n_i, dim]`` arrays
        (lengths may differ) or one ``[batch, n, dim]`` array; one list of hits per query
        (backends that can score a batch in one pass over their vectors do).
        """
        queries = check_query_batch(query_vectors, self.model.dim)
        checked = check_filter(filter)
        k = check_k(k)
        return self._search_vectors_batch(queries, k, checked)

    def check_retrieval_mode(self, mode: object) -> str:
        """``mode`` if this index runs it (``None``: ``"colbert"``), else an
        :class:`~colbert_plugins.errors.InvalidArgumentError` that lists the modes it runs."""
        if mode is None:
            return "colbert"
        if mode not in self.retrieval_modes:
            hint = (
                "; BM25 and hybrid retrieval need a QdrantIndex (colbert_plugins.index.qdrant)"
                if mode in ("bm25", "hybrid")
                else ""
            )
            raise InvalidArgumentError(
                f"retrieval_mode must be one of {', '.join(map(repr, self.retrieval_modes))} "
                f"for {type(self).__name__}, got {mode!r}{hint}"
            )
        return str(mode)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and bool(self.get([doc_id], missing_ok=True))

    @abstractmethod
    def _search_vectors(
        self, query: FloatArray, k: int, filter: dict[str, Any] | None
    ) -> list[SearchHit]:
        """The ``k`` best documents for one checked query (float32 ``[n, dim]``), best first.

        ``filter`` is checked (:func:`check_filter`'s normal form, or ``None``); apply it
        before the top-``k`` cut, with exactly the semantics of :func:`matches_filter`.
        """

    def _search_vectors_batch(
        self, queries: list[FloatArray], k: int, filter: dict[str, Any] | None
    ) -> list[list[SearchHit]]:
        """:meth:`_search_vectors` for each query; backends that can score a batch in one
        pass over their vectors override it."""
        return [self._search_vectors(query, k, filter) for query in queries]

    @abstractmethod
    def delete(self, ids: Iterable[str], *, missing_ok: bool = False) -> None:
        """Remove documents by id.

        Unknown ids raise :class:`UnknownIdError` and nothing is deleted, unless
        ``missing_ok=True``, which skips them.
        """

    @abstractmethod
    def get(self, ids: Iterable[str], *, missing_ok: bool = False) -> list[IndexedDocument]:
        """The stored documents with these ids, in the order given.

        Unknown ids raise :class:`UnknownIdError`, unless ``missing_ok=True``, which skips them.
        """

    @abstractmethod
    def ids(self) -> list[str]:
        """The ids of all stored documents."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of stored documents."""

    @abstractmethod
    def _upsert(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        vectors: list[FloatArray],
    ) -> None:
        """Store encoded documents, replacing those with the same ids."""


# -- ranking -----------------------------------------------------------------------------------


def top_k(scores: npt.NDArray[Any], k: int) -> npt.NDArray[np.intp]:
    """Indices of the ``k`` largest ``scores``, best first, equal scores in index order.

    >>> top_k(np.array([0.5, 2.0, 0.5, 1.0, 0.5]), 3).tolist()
    [1, 3, 0]
    """
    n = len(scores)
    if k < n:
        # Keep every score tied with the k-th best, then order those stably.
        kth = np.partition(scores, n - k)[n - k]
        candidates = np.flatnonzero(scores >= kth)
    else:
        candidates = np.arange(n)
    order = np.argsort(-scores[candidates], kind="stable")[:k]
    return candidates[order]


# -- validation helpers (shared with the Qdrant backend and the retrievers) --------------------


def read_manifest_json(path: Path, missing: str) -> dict[str, Any]:
    """The JSON object in a saved index's manifest file (``missing``: the error's text when
    there is no such file)."""
    if not path.is_file():
        raise IndexFormatError(missing)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"cannot read {path}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise IndexFormatError(f"{path} does not hold a JSON object")
    return manifest


def check_manifest_fields(
    path: Path, manifest: Mapping[str, Any], fields: Iterable[tuple[str, type]]
) -> None:
    """An :class:`IndexFormatError` naming the first field missing or of the wrong type."""
    for key, kind in fields:
        if not isinstance(manifest.get(key), kind):
            raise IndexFormatError(f"{path} lacks a valid {key!r}")


def check_index_model(
    root: Path, manifest: Mapping[str, Any], model: ColBERT, check_model_key: bool
) -> None:
    """An :class:`IndexMismatchError` when the saved index's vectors are not ``model``'s: a
    different vector size always; a different model key unless ``check_model_key`` is off."""
    if manifest["dim"] != model.dim:
        raise IndexMismatchError(
            f"the index at {root} holds {manifest['dim']}-dim vectors from model "
            f"{manifest.get('model_name')!r}, but {model.name!r} produces {model.dim}-dim vectors"
        )
    if check_model_key and manifest["model_key"] != model.model_key:
        raise IndexMismatchError(
            f"the index at {root} was built with model {manifest.get('model_name')!r} "
            f"(key {str(manifest['model_key'])[:12]}…), not with {model.name!r} "
            f"(key {model.model_key[:12]}…){model_differences(manifest, model)}: its "
            f"vectors do not match this model's queries. {MISMATCH_HINT}"
        )


#: How to get past a model-key mismatch, in Python (the command line says it with flags).
MISMATCH_HINT = (
    "Rebuild the index, or pass check_model_key=False if the models are known to produce "
    "identical vectors"
)


_DETAIL_NAMES = {"graph": "the ONNX graph", "tokenizer": "the tokenizer"}


def model_differences(manifest: Mapping[str, Any], model: ColBERT) -> str:
    """``"; they differ in ..."`` naming what differs between the model an index recorded
    (``model_details``) and ``model``, or ``""`` when the index recorded none.

    >>> class Model:
    ...     def key_details(self): return {"graph": "a", "document_length": 128}
    >>> model_differences({"model_details": {"graph": "a", "document_length": 180}}, Model())
    '; they differ in document_length (index 180, this model 128)'
    """
    recorded = manifest.get("model_details")
    if not isinstance(recorded, Mapping):
        return ""
    current = json.loads(json.dumps(model.key_details()))
    parts = []
    for name in sorted(set(recorded) | set(current)):
        if recorded.get(name) == current.get(name):
            continue
        if name in _DETAIL_NAMES:
            parts.append(_DETAIL_NAMES[name])
        else:
            parts.append(f"{name} (index {recorded.get(name)!r}, this model {current.get(name)!r})")
    return f"; they differ in {', '.join(parts)}" if parts else ""


def check_k(k: Any, name: str = "k") -> int:
    """A positive number of results (:func:`~colbert_plugins.checks.check_int`)."""
    return check_int(k, name)


def check_ids(ids: Any) -> list[str]:
    """A list of string ids (a single string is refused: it is almost always a mistake)."""
    if isinstance(ids, str | bytes):
        raise InvalidArgumentTypeError(
            f"ids must be a list of strings, not a single {type(ids).__name__}; wrap it in a list"
        )
    if not isinstance(ids, Iterable):
        raise InvalidArgumentTypeError(f"ids must be a list of strings, got {type(ids).__name__}")
    items = list(ids)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidArgumentTypeError(f"ids[{i}] must be a str, got {type(item).__name__}")
    return items


def check_known(ids: Iterable[str], known: Container[str], *, missing_ok: bool = False) -> None:
    """Raise :class:`UnknownIdError` naming the ``ids`` not in ``known`` (in the order given);
    with ``missing_ok`` nothing is checked."""
    if missing_ok:
        return
    missing = [i for i in ids if i not in known]
    if missing:
        raise UnknownIdError(missing)


def locate(
    ids: Any, positions: Mapping[str, Position], *, missing_ok: bool = False
) -> list[tuple[str, Position]]:
    """Each of ``ids`` (:func:`check_ids`) with its entry in ``positions``, in the order given.
    Unknown ids raise :class:`UnknownIdError`, unless ``missing_ok``, which skips them.

    >>> locate(["b", "a"], {"a": 0, "b": 1})
    [('b', 1), ('a', 0)]
    """
    wanted = check_ids(ids)
    check_known(wanted, positions, missing_ok=missing_ok)
    return [(doc_id, positions[doc_id]) for doc_id in wanted if doc_id in positions]


def check_documents(
    texts: Any, ids: Any, metadatas: Any
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Validate ``add`` arguments: texts, unique non-empty ids (random when None) and
    metadata copies, all of the same length."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Iterable):
        raise InvalidArgumentTypeError(
            f"texts must be a list of strings, got {type(texts).__name__}"
        )
    text_list = list(texts)
    for i, text in enumerate(text_list):
        if not isinstance(text, str):
            raise InvalidArgumentTypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
    if ids is None:
        id_list = [str(uuid.uuid4()) for _ in text_list]
    else:
        id_list = check_ids(ids)
        if len(id_list) != len(text_list):
            raise InvalidArgumentError(f"got {len(text_list)} texts but {len(id_list)} ids")
        if any(not i for i in id_list):
            raise InvalidArgumentError("ids must be non-empty strings")
        if len(set(id_list)) != len(id_list):
            dupes = [i for i, n in Counter(id_list).items() if n > 1]
            raise InvalidArgumentError(f"ids must be unique within one call; repeated: {dupes[:5]}")
    if metadatas is None:
        meta_list: list[dict[str, Any]] = [{} for _ in text_list]
    else:
        if isinstance(metadatas, Mapping) or not isinstance(metadatas, Iterable):
            raise InvalidArgumentTypeError(
                f"metadatas must be a list of dicts (one per text), got {type(metadatas).__name__}"
            )
        raw = list(metadatas)
        if len(raw) != len(text_list):
            raise InvalidArgumentError(f"got {len(text_list)} texts but {len(raw)} metadatas")
        meta_list = []
        for i, meta in enumerate(raw):
            if meta is None:
                meta_list.append({})
            elif isinstance(meta, Mapping):
                for key in meta:
                    if not isinstance(key, str):
                        raise InvalidArgumentTypeError(
                            f"metadatas[{i}] keys must be str, got {type(key).__name__} {key!r}"
                        )
                meta_list.append(copy.deepcopy(dict(meta)))
            else:
                raise InvalidArgumentTypeError(
                    f"metadatas[{i}] must be a dict or None, got {type(meta).__name__}"
                )
    return text_list, id_list, meta_list


def check_json_metadata(doc_id: str, metadata: dict[str, Any]) -> str:
    """``metadata`` as JSON, refusing what would not come back equal (tuples, NaN, objects)."""
    try:
        encoded = json.dumps(metadata, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentTypeError(
            f"metadata of document {doc_id!r} is not JSON-serializable: {exc}"
        ) from exc
    if json.loads(encoded) != metadata:
        raise InvalidArgumentTypeError(
            f"metadata of document {doc_id!r} would change in JSON (tuples become lists, "
            "non-str keys become str): store JSON types only"
        )
    return encoded


def check_encoded(ids: Sequence[str], vectors: Sequence[FloatArray], dim: int) -> None:
    """A :class:`ColBERTError` naming the first document whose vectors are not ``[n, dim]``
    (what an encoder must have produced)."""
    for doc_id, v in zip(ids, vectors, strict=True):
        if v.ndim != 2 or v.shape[1] != dim:
            raise ColBERTError(
                f"document {doc_id!r} was encoded to shape {v.shape}, expected [n, {dim}]"
            )


def document_line(doc_id: str, text: str, metadata: dict[str, Any]) -> str:
    """The stored JSON line of a document: ``{"id", "text", "metadata"}``, with metadata that
    comes back equal (:func:`check_json_metadata`)."""
    check_json_metadata(doc_id, metadata)
    return json.dumps(
        {"id": doc_id, "text": text, "metadata": metadata}, ensure_ascii=False, allow_nan=False
    )


def check_query_batch(queries: Any, dim: int) -> list[FloatArray]:
    """Several encoded queries: a ``[batch, n, dim]`` array or a sequence of ``[n_i, dim]``
    arrays, as a list of float32 ``[n_i, dim]`` arrays."""
    if isinstance(queries, np.ndarray):
        if queries.ndim != 3:
            hint = ""
            if queries.ndim == 2:
                hint = " (one query: use search_vectors, or wrap it in a list)"
            raise InvalidArgumentError(
                f"a batch of query vectors must be a [batch, n, {dim}] array or a list of "
                f"[n, {dim}] arrays, got an array of shape {queries.shape}{hint}"
            )
        return [check_query_vectors(query, dim) for query in queries]
    if isinstance(queries, str | bytes | Mapping) or not isinstance(queries, Iterable):
        raise InvalidArgumentTypeError(
            f"a batch of query vectors must be a list of [n, {dim}] arrays or a [batch, n, "
            f"{dim}] array, got {type(queries).__name__}"
        )
    return [check_query_vectors(query, dim) for query in queries]


def check_queries(queries: Any) -> list[str]:
    """The checked query texts of a batch (a list or other iterable of strings, not one)."""
    if isinstance(queries, str | bytes) or not isinstance(queries, Iterable):
        raise InvalidArgumentTypeError(
            f"queries must be a list of strings (one query: use search), got "
            f"{type(queries).__name__}"
        )
    return [check_query(text, f"queries[{i}]") for i, text in enumerate(queries)]


def check_query_vectors(query: Any, dim: int) -> FloatArray:
    array = np.asarray(query, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dim:
        raise InvalidArgumentError(
            f"query vectors must be a [n, {dim}] array, got shape {array.shape}"
        )
    return array
