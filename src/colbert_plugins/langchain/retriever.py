"""LangChain retriever over a ColBERT index: exact late-interaction (MaxSim) retrieval.

>>> from colbert_plugins.langchain import ColBERTRetriever  # doctest: +SKIP
>>> retriever = ColBERTRetriever.from_documents(docs, model="path/to/model", k=4)  # doctest: +SKIP
>>> retriever.invoke("how do wings behave in a slipstream?", k=2)  # doctest: +SKIP
>>> retriever.invoke("wings", filter={"source": ["a.pdf", "b.pdf"]})  # doctest: +SKIP
>>> retriever.invoke("wings", retrieval_mode="hybrid")  # a QdrantIndex  # doctest: +SKIP

The documents live in a :class:`~colbert_plugins.index.ColBERTIndex`: the in-process exact
:class:`~colbert_plugins.index.InMemoryIndex` by default, or a
:class:`~colbert_plugins.index.qdrant.QdrantIndex` given as ``index=``.

Needs the ``langchain`` extra (``langchain-core``); importing this module without it raises
:class:`~colbert_plugins.errors.MissingDependencyError`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from ..checks import check_int, check_query
from ..components import Checked, PositiveInt
from ..errors import InvalidArgumentTypeError
from ..index import ColBERTIndex, MetadataFilter, SearchHit, check_filter, resolve_index
from ..model import ColBERT
from ._common import RELEVANCE_SCORE_KEY, check_documents

__all__ = ["ColBERTRetriever"]

#: Keyword arguments ``invoke`` passes along that are not search options.
_IGNORED_KWARGS = frozenset({"verbose"})


class ColBERTRetriever(Checked, BaseRetriever):
    """Retrieve the ``k`` best documents of a ColBERT index by MaxSim score.

    Build it from documents (:meth:`from_documents`, :meth:`from_texts`) or around an existing
    index (``ColBERTRetriever(index=index, k=4)``). The search options ``k``, ``filter`` and
    ``retrieval_mode`` can be changed per call, as the search kwargs of LangChain's vector
    store retrievers: ``retriever.invoke(query, k=10, filter={"source": "a.pdf"})``.

    Each result is a new :class:`~langchain_core.documents.Document` with the stored text as
    ``page_content``, the document's id as ``id``, and a copy of its metadata plus
    ``"relevance_score"`` (the index's score, a float: MaxSim in the ``"colbert"`` mode),
    best first.

    Args:
        index: the :class:`~colbert_plugins.index.ColBERTIndex` to search.
        k: number of documents to return (>= 1).
        filter: a metadata filter applied to every search unless a call gives its own:
            ``{"field": value}`` (equality) or ``{"field": [v1, v2]}`` (membership), all
            fields must hold (:func:`~colbert_plugins.index.check_filter`). It is applied
            before the top-``k`` cut, so ``k`` documents come back whenever ``k`` match.
        retrieval_mode: how every search without its own ranks documents: one of the index's
            :attr:`~colbert_plugins.index.ColBERTIndex.retrieval_modes` (``"colbert"``:
            MaxSim, every index; a :class:`~colbert_plugins.index.qdrant.QdrantIndex` also
            runs ``"bm25"`` and ``"hybrid"``, BM25 and ColBERT fused by reciprocal rank).
            ``None`` (the default): the index's own default. A mode the index cannot run is
            refused when set, with the index's
            :class:`~colbert_plugins.errors.InvalidArgumentError`.
        **kwargs: :class:`~langchain_core.retrievers.BaseRetriever` fields (``tags``,
            ``metadata``).

    ``copy.deepcopy`` and ``model_copy(update=...)`` give a retriever with its own settings
    over the same index (never copied).
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True, extra="forbid", validate_assignment=True
    )

    index: ColBERTIndex = Field(description="The ColBERT index searched.")
    k: PositiveInt = Field(default=4, description="Number of documents to return.")
    filter: dict[str, Any] | None = Field(
        default=None,
        description="Metadata filter of every search without its own: {field: value} "
        "(equality) or {field: [values]} (membership), all fields must hold.",
    )
    retrieval_mode: str | None = Field(
        default=None,
        description="Retrieval mode of every search without its own: one of the index's "
        "retrieval_modes ('colbert'; a QdrantIndex also 'bm25' and 'hybrid'); None: the "
        "index's default.",
    )

    @field_validator("filter", mode="before")
    @classmethod
    def _check_filter(cls, value: Any) -> dict[str, Any] | None:
        check_filter(value)  # our clear error, not a pydantic one
        return None if value is None else dict(value)

    @field_validator("retrieval_mode", mode="before")
    @classmethod
    def _check_retrieval_mode(cls, value: Any, info: ValidationInfo) -> str | None:
        mode = _mode_argument(value)
        index = info.data.get("index")  # absent when the index itself was refused
        if mode is not None and isinstance(index, ColBERTIndex):
            index.check_retrieval_mode(mode)  # the index's own error, at construction
        return mode

    def _shared_by_copies(self) -> Iterable[object]:
        # An index holds a model and maybe files or a server connection: never copied.
        return (self.index,)

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        model: ColBERT | str | os.PathLike[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str] | None = None,
        *,
        index: ColBERTIndex | None = None,
        k: int = 4,
        batch_size: int = 32,
        show_progress: bool = False,
        model_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> ColBERTRetriever:
        """Index ``texts`` and return a retriever over them.

        Args:
            texts: the documents' texts.
            model: a :class:`~colbert_plugins.ColBERT`, or a model name or directory loaded
                with ``model_kwargs``; the texts go to a new in-process exact index.
            metadatas: one metadata mapping per text.
            ids: one unique id per text (default: random UUIDs).
            index: an index to add the texts to instead (e.g. a ``QdrantIndex``); it brings
                its own model.
            k: number of documents to return.
            batch_size: documents per encoder call.
            show_progress: show a progress bar while encoding.
            model_kwargs: keyword arguments of ``ColBERT.from_pretrained``.
            **kwargs: more retriever fields (``filter``, ``retrieval_mode``, ``tags``,
                ``metadata``).
        """
        k = check_int(k, "k")
        target = resolve_index(model, index, model_kwargs)
        mode = _mode_argument(kwargs.get("retrieval_mode"))
        if mode is not None:
            target.check_retrieval_mode(mode)  # before any text is encoded
        target.add(
            texts,
            ids=ids,
            metadatas=metadatas,
            batch_size=batch_size,
            show_progress=show_progress,
        )
        return cls(index=target, k=k, **kwargs)

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Document],
        model: ColBERT | str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> ColBERTRetriever:
        """Index LangChain documents (their ``page_content``, ``id`` when set, and
        ``metadata``) and return a retriever over them; arguments as :meth:`from_texts`."""
        texts, ids, metadatas = _split_documents(check_documents(documents, allow_str=False))
        return cls.from_texts(texts, model, metadatas, ids, **kwargs)

    # -- maintenance -----------------------------------------------------------------------------

    def add_documents(
        self, documents: Iterable[Document], *, batch_size: int = 32, show_progress: bool = False
    ) -> list[str]:
        """Add (or replace, by id) documents; documents without an id get a random one.

        Returns the ids, in input order.
        """
        texts, ids, metadatas = _split_documents(check_documents(documents, allow_str=False))
        return self.index.add(
            texts, ids=ids, metadatas=metadatas, batch_size=batch_size, show_progress=show_progress
        )

    # -- retrieval -------------------------------------------------------------------------------

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self._search(query, **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        # Encoding and scoring are CPU-bound: run them in a worker thread.
        return await run_in_executor(None, self._search, query, **kwargs)

    def _search(
        self,
        query: str,
        k: int | None = None,
        filter: MetadataFilter | None = None,
        retrieval_mode: str | None = None,
        **extra: Any,
    ) -> list[Document]:
        unknown = sorted(set(extra) - _IGNORED_KWARGS)
        if unknown:
            raise InvalidArgumentTypeError(
                f"ColBERTRetriever got unexpected keyword argument(s) {', '.join(unknown)}; "
                "the search options are k, filter and retrieval_mode"
            )
        query = check_query(query)
        mode = _mode_argument(retrieval_mode)
        hits = self.index.search(
            query,
            k=self.k if k is None else check_int(k, "k"),
            filter=self.filter if filter is None else filter,
            retrieval_mode=self.retrieval_mode if mode is None else mode,
        )
        return [_to_document(hit) for hit in hits]


def _mode_argument(value: object) -> str | None:
    """A ``retrieval_mode`` argument: ``None`` or a string (which modes an index runs is the
    index's to say: :meth:`~colbert_plugins.index.ColBERTIndex.check_retrieval_mode`)."""
    if value is not None and not isinstance(value, str):
        raise InvalidArgumentTypeError(
            f"retrieval_mode must be a string such as 'colbert' or None, got {type(value).__name__}"
        )
    return value


def _to_document(hit: SearchHit) -> Document:
    metadata = dict(hit.metadata)
    metadata[RELEVANCE_SCORE_KEY] = hit.score
    return Document(page_content=hit.text, metadata=metadata, id=hit.id)


def _split_documents(
    documents: list[Document],
) -> tuple[list[str], list[str] | None, list[dict[str, Any]]]:
    texts = [d.page_content for d in documents]
    metadatas = [dict(d.metadata) for d in documents]
    if all(d.id is None for d in documents):
        return texts, None, metadatas
    ids = [d.id if d.id else str(uuid.uuid4()) for d in documents]
    return texts, ids, metadatas
