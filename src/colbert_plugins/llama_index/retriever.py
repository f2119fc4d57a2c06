"""LlamaIndex retriever over a ColBERT index: exact late-interaction (MaxSim) retrieval.

>>> from colbert_plugins.llama_index import ColBERTRetriever  # doctest: +SKIP
>>> retriever = ColBERTRetriever.from_nodes(nodes, model=colbert)  # doctest: +SKIP
>>> engine = RetrieverQueryEngine.from_args(retriever, llm=llm)  # doctest: +SKIP
>>> year = MetadataFilters(filters=[MetadataFilter(key="year", value=2024)])  # doctest: +SKIP
>>> retriever.filters = year  # doctest: +SKIP
>>> retriever.retrieval_mode = "hybrid"  # a QdrantIndex: BM25 and ColBERT  # doctest: +SKIP

Nodes are stored in a :class:`~colbert_plugins.index.ColBERTIndex` (the in-process exact
:class:`~colbert_plugins.index.InMemoryIndex` by default, or a
:class:`~colbert_plugins.index.qdrant.QdrantIndex` given as ``index=``) with the whole node
serialized in the metadata, so retrieval returns the original node (id, metadata,
relationships); documents indexed by other means come back as ``TextNode``.

Needs the ``llama-index`` extra (``llama-index-core``); importing this module without it
raises :class:`~colbert_plugins.errors.MissingDependencyError`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.ingestion import run_transformations
from llama_index.core.schema import (
    BaseNode,
    Document,
    MetadataMode,
    NodeWithScore,
    QueryBundle,
    TextNode,
    TransformComponent,
)
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node

from ..checks import check_int, check_items
from ..errors import InvalidArgumentError, InvalidArgumentTypeError
from ..index import ColBERTIndex, SearchHit, check_filter, resolve_index
from ..model import ColBERT

__all__ = ["NODE_CONTENT_KEY", "NODE_TYPE_KEY", "ColBERTRetriever", "metadata_filter"]

#: Metadata keys holding the serialized node (the keys LlamaIndex's vector stores use).
NODE_CONTENT_KEY = "_node_content"
NODE_TYPE_KEY = "_node_type"


class ColBERTRetriever(BaseRetriever):
    """Retrieve the ``similarity_top_k`` best nodes of a ColBERT index by MaxSim score.

    Build it from nodes (:meth:`from_nodes`) or documents (:meth:`from_documents`), or around
    an existing index. Returns :class:`NodeWithScore` objects, best first, whose ``score`` is
    the index's score (MaxSim in the ``"colbert"`` retrieval mode); each node is a fresh copy,
    never the stored one.

    Args:
        index: the :class:`~colbert_plugins.index.ColBERTIndex` to search.
        similarity_top_k: number of nodes to return (>= 1).
        filters: LlamaIndex ``MetadataFilters`` on the nodes' metadata, as for a vector index
            retriever: operators ``EQ`` and ``IN``, combined with ``AND`` (nested
            ``MetadataFilters`` too); anything else is refused when set (see
            :func:`metadata_filter`). Applied before the top-k cut, so ``similarity_top_k``
            nodes come back whenever that many match. Settable later (``retriever.filters``).
        retrieval_mode: how every retrieval ranks nodes: one of the index's
            :attr:`~colbert_plugins.index.ColBERTIndex.retrieval_modes` (``"colbert"``:
            MaxSim, every index; a :class:`~colbert_plugins.index.qdrant.QdrantIndex` also
            runs ``"bm25"`` and ``"hybrid"``, BM25 and ColBERT fused by reciprocal rank).
            ``None`` (the default): the index's own default. A mode the index cannot run is
            refused when set, with the index's
            :class:`~colbert_plugins.errors.InvalidArgumentError`. Settable later
            (``retriever.retrieval_mode``).
        callback_manager: LlamaIndex callback manager.
        object_map, objects, verbose: as for any LlamaIndex ``BaseRetriever`` (recursive
            retrieval through ``IndexNode`` objects).

    An index (a model, arrays, files or a server connection) cannot be serialized:
    :meth:`to_dict` keeps the settings only (``similarity_top_k``, ``filters``,
    ``retrieval_mode``, ``verbose``)
    and :meth:`from_dict` needs the index again (``from_dict(data, index=index)``).
    ``copy.deepcopy`` gives a retriever with its own settings over the same index.
    """

    def __init__(
        self,
        index: ColBERTIndex,
        similarity_top_k: int = 4,
        *,
        filters: MetadataFilters | None = None,
        retrieval_mode: str | None = None,
        callback_manager: CallbackManager | None = None,
        object_map: dict[str, Any] | None = None,
        objects: list[Any] | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(index, ColBERTIndex):
            raise InvalidArgumentTypeError(
                f"index must be a ColBERTIndex (e.g. InMemoryIndex), got {type(index).__name__}"
            )
        self._index = index
        self._similarity_top_k = check_int(similarity_top_k, "similarity_top_k")
        self._filter = metadata_filter(filters)
        self._filters = filters
        self._retrieval_mode = _check_mode(index, retrieval_mode)
        super().__init__(
            callback_manager=callback_manager,
            object_map=object_map,
            objects=objects,
            verbose=verbose,
        )

    @property
    def index(self) -> ColBERTIndex:
        """The ColBERT index searched."""
        return self._index

    @property
    def similarity_top_k(self) -> int:
        """Number of nodes returned (>= 1)."""
        return self._similarity_top_k

    @similarity_top_k.setter
    def similarity_top_k(self, value: int) -> None:
        self._similarity_top_k = check_int(value, "similarity_top_k")

    @property
    def filters(self) -> MetadataFilters | None:
        """The ``MetadataFilters`` every retrieval applies (``None``: no filter)."""
        return self._filters

    @filters.setter
    def filters(self, value: MetadataFilters | None) -> None:
        self._filter = metadata_filter(value)
        self._filters = value

    @property
    def retrieval_mode(self) -> str | None:
        """The retrieval mode of every retrieval (``None``: the index's default)."""
        return self._retrieval_mode

    @retrieval_mode.setter
    def retrieval_mode(self, value: str | None) -> None:
        self._retrieval_mode = _check_mode(self._index, value)

    # -- serialization and copies ----------------------------------------------------------------

    @classmethod
    def class_name(cls) -> str:
        return "ColBERTRetriever"

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-compatible dict, with ``class_name`` (not the index)."""
        filters = None if self._filters is None else self._filters.model_dump(mode="json")
        return {
            "class_name": self.class_name(),
            "similarity_top_k": self._similarity_top_k,
            "filters": filters,
            "retrieval_mode": self._retrieval_mode,
            "verbose": self._verbose,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, index: ColBERTIndex | None = None, **kwargs: Any
    ) -> ColBERTRetriever:
        """A retriever with the settings of :meth:`to_dict` over ``index`` (required: an index
        is not serialized); ``kwargs`` override settings."""
        if index is None:
            raise InvalidArgumentError(
                "ColBERTRetriever.from_dict needs the index: its settings are serialized, the "
                "index is not (give from_dict(data, index=index))"
            )
        settings = {k: v for k, v in {**data, **kwargs}.items() if k != "class_name"}
        unknown = sorted(set(settings) - _SETTINGS)
        if unknown:
            raise InvalidArgumentTypeError(
                f"ColBERTRetriever.from_dict got unexpected key(s) {', '.join(unknown)}"
            )
        filters = settings.pop("filters", None)
        if isinstance(filters, Mapping):
            filters = MetadataFilters.model_validate(filters)
        return cls(index, filters=filters, **settings)

    @classmethod
    def from_json(cls, data: str, *, index: ColBERTIndex | None = None) -> ColBERTRetriever:
        """:meth:`from_dict` of a :meth:`to_json` string."""
        return cls.from_dict(json.loads(data), index=index)

    def __deepcopy__(self, memo: dict[int, Any]) -> ColBERTRetriever:
        memo[id(self._index)] = self._index  # shared, never copied
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        for name, value in self.__dict__.items():
            setattr(copied, name, copy.deepcopy(value, memo))
        return copied

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_nodes(
        cls,
        nodes: Iterable[BaseNode],
        model: ColBERT | str | os.PathLike[str] | None = None,
        *,
        index: ColBERTIndex | None = None,
        similarity_top_k: int = 4,
        filters: MetadataFilters | None = None,
        retrieval_mode: str | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        **add_options: Any,
    ) -> ColBERTRetriever:
        """Index ``nodes`` and return a retriever over them.

        Args:
            nodes: the nodes (see :meth:`add_nodes`).
            model: a :class:`~colbert_plugins.ColBERT`, or a model name or directory loaded
                with ``model_kwargs``; the nodes go to a new in-process exact index.
            index: an index to add the nodes to instead (e.g. a ``QdrantIndex``).
            similarity_top_k: number of nodes to return.
            filters: ``MetadataFilters`` applied to every retrieval (see the class).
            retrieval_mode: the retrieval mode of every retrieval (see the class).
            model_kwargs: keyword arguments of ``ColBERT.from_pretrained``.
            callback_manager: LlamaIndex callback manager.
            **add_options: ``metadata_mode``, ``batch_size``, ``show_progress``, as for
                :meth:`add_nodes`.
        """
        top_k = check_int(similarity_top_k, "similarity_top_k")
        target = resolve_index(model, index, model_kwargs)
        retriever = cls(
            target,
            top_k,
            filters=filters,
            retrieval_mode=retrieval_mode,
            callback_manager=callback_manager,
        )
        retriever.add_nodes(nodes, **add_options)
        return retriever

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Document],
        model: ColBERT | str | os.PathLike[str] | None = None,
        *,
        transformations: Sequence[TransformComponent] | None = None,
        **kwargs: Any,
    ) -> ColBERTRetriever:
        """Index documents and return a retriever over them.

        With ``transformations`` (e.g. ``[SentenceSplitter(chunk_size=180)]``) the documents
        are split into nodes first; without, each document is one node. ColBERT reads at most
        ``document_length`` tokens of each text (the rest is truncated), so split long
        documents. Other arguments as :meth:`from_nodes`.
        """
        docs = list(documents)
        nodes: list[BaseNode] = list(docs)
        if transformations:
            nodes = list(run_transformations(nodes, list(transformations)))
        return cls.from_nodes(nodes, model, **kwargs)

    # -- maintenance -----------------------------------------------------------------------------

    def add_nodes(
        self,
        nodes: Iterable[BaseNode],
        *,
        metadata_mode: MetadataMode = MetadataMode.EMBED,
        batch_size: int = 32,
        show_progress: bool = False,
    ) -> list[str]:
        """Add (or replace, by node id) nodes to the index; returns their ids.

        Args:
            nodes: the nodes; each is indexed under its ``node_id`` with the text
                ``node.get_content(metadata_mode)`` (re-adding a node id replaces it).
            metadata_mode: which metadata is part of the indexed text (``EMBED``, as for
                embeddings, by default; ``NONE`` indexes the text alone).
            batch_size: documents per encoder call.
            show_progress: show a progress bar while encoding.
        """
        items = check_items(nodes, "nodes", BaseNode, label="LlamaIndex node", hint=_unwrap_hint)
        texts = [node.get_content(metadata_mode=metadata_mode) for node in items]
        ids = [node.node_id for node in items]
        metadatas = [_node_metadata(node) for node in items]
        return self._index.add(
            texts, ids=ids, metadatas=metadatas, batch_size=batch_size, show_progress=show_progress
        )

    def delete(self, node_ids: Iterable[str], *, missing_ok: bool = False) -> None:
        """Remove nodes by id (see :meth:`ColBERTIndex.delete`)."""
        self._index.delete(node_ids, missing_ok=missing_ok)

    # -- retrieval -------------------------------------------------------------------------------

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._index.search(
            query_bundle.query_str,
            k=self._similarity_top_k,
            filter=self._filter,
            retrieval_mode=self._retrieval_mode,
        )
        return [NodeWithScore(node=_to_node(hit), score=hit.score) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # Encoding and scoring are CPU-bound: run them in a worker thread.
        return await asyncio.to_thread(self._retrieve, query_bundle)


_SUPPORTED_OPERATORS = (FilterOperator.EQ, FilterOperator.IN)
#: The settings :meth:`ColBERTRetriever.to_dict` keeps.
_SETTINGS = frozenset({"similarity_top_k", "filters", "retrieval_mode", "verbose"})


def _check_mode(index: ColBERTIndex, mode: Any) -> str | None:
    """``mode`` (``None`` or a string) if ``index`` runs it, else the index's error."""
    if mode is None:
        return None
    if not isinstance(mode, str):
        raise InvalidArgumentTypeError(
            f"retrieval_mode must be a string such as 'colbert' or None, got {type(mode).__name__}"
        )
    index.check_retrieval_mode(mode)
    return mode


def metadata_filter(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex ``MetadataFilters`` as a colbert-plugins metadata filter
    (:func:`~colbert_plugins.index.check_filter`), or ``None`` for no filter.

    Supported: ``FilterOperator.EQ`` (a scalar value) and ``FilterOperator.IN`` (a list),
    combined with ``FilterCondition.AND`` (or no condition), nested ``MetadataFilters`` with
    ``AND`` too; each key at most once. Other operators (``NE``, ``GT``, ``NIN``, ``ANY``,
    ...) and conditions (``OR``, ``NOT``) raise
    :class:`~colbert_plugins.errors.InvalidArgumentError` naming them, rather than being
    ignored or approximated.
    """
    if filters is None:
        return None
    if not isinstance(filters, MetadataFilters):
        raise InvalidArgumentTypeError(
            "filters must be llama_index.core.vector_stores.MetadataFilters (e.g. "
            "MetadataFilters(filters=[MetadataFilter(key='year', value=2024)])), got "
            f"{type(filters).__name__}"
        )
    flat: dict[str, Any] = {}
    _flatten_filters(filters, flat)
    return check_filter(flat)


def _flatten_filters(filters: MetadataFilters, into: dict[str, Any]) -> None:
    if filters.condition not in (None, FilterCondition.AND):
        raise InvalidArgumentError(
            f"MetadataFilters condition {_enum_name(filters.condition)} is not supported by "
            "the ColBERT retriever; only AND combines filters"
        )
    for item in filters.filters:
        if isinstance(item, MetadataFilters):
            _flatten_filters(item, into)
            continue
        if not isinstance(item, MetadataFilter):  # pragma: no cover - pydantic checks it
            raise InvalidArgumentTypeError(f"unexpected filter {type(item).__name__}")
        if item.operator not in _SUPPORTED_OPERATORS:
            raise InvalidArgumentError(
                f"MetadataFilter operator {_enum_name(item.operator)} (key {item.key!r}) is not "
                "supported by the ColBERT retriever; supported: EQ (==) and IN (in)"
            )
        if item.key in into:
            raise InvalidArgumentError(
                f"MetadataFilters name the key {item.key!r} more than once; give each key one "
                "filter (use FilterOperator.IN for several accepted values)"
            )
        value: Any = item.value
        if item.operator == FilterOperator.EQ and isinstance(value, list):
            raise InvalidArgumentError(
                f"MetadataFilter EQ on {item.key!r} got a list; use FilterOperator.IN to match "
                "any of several values"
            )
        if item.operator == FilterOperator.IN and not isinstance(value, list):
            raise InvalidArgumentError(
                f"MetadataFilter IN on {item.key!r} needs a list of values, got {value!r}"
            )
        into[item.key] = value


def _enum_name(value: Any) -> str:
    name = getattr(value, "name", None)
    return f"{name} ({value.value!r})" if name else repr(value)


def _node_metadata(node: BaseNode) -> dict[str, Any]:
    """The node's own metadata (JSON form) plus the serialized node, to rebuild it."""
    dumped = node.model_dump(mode="json")
    dumped["embedding"] = None
    metadata: dict[str, Any] = dict(dumped.get("metadata") or {})
    metadata[NODE_CONTENT_KEY] = json.dumps(dumped, ensure_ascii=False)
    metadata[NODE_TYPE_KEY] = node.class_name()
    return metadata


def _to_node(hit: SearchHit) -> BaseNode:
    if NODE_CONTENT_KEY in hit.metadata:
        return metadata_dict_to_node(hit.metadata)
    return TextNode(id_=hit.id, text=hit.text, metadata=dict(hit.metadata))


def _unwrap_hint(item: Any) -> str:
    return " (pass node.node, not the NodeWithScore)" if hasattr(item, "node") else ""
