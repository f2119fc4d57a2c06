"""The :class:`ColBERT` facade: load a model, encode queries and documents, score, rerank.

The facade has a tokenizer (:class:`.ColBERTTokenizer`), an encoder (:class:`.OnnxEncoder`)
and uses the MaxSim functions of :mod:`.scoring`; it holds no other state than an optional
document-embedding cache, so one instance may be shared by many threads.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .cache import EmbeddingCache, text_key
from .checks import check_int, check_optional_int, check_query, check_texts
from .config import ColBERTConfig
from .errors import (
    InvalidArgumentTypeError,
    ModelLoadError,
    ModelOutputError,
)
from .hub import ModelFiles, resolve_model_files
from .onnx_encoder import OnnxEncoder, check_providers
from .optimize import Optimize, Quantize, graph_fingerprint, prepare_graph
from .scoring import l2_normalize, maxsim_scores
from .settings import ModelSettings, resolve_settings
from .tokenization import ColBERTTokenizer, load_tokenizer

if TYPE_CHECKING:
    from .explain import Explanation

__all__ = ["ColBERT", "RerankResult"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]

#: Default cap on padded tokens (batch x length) per encoder call: bounds the attention
#: matrices' memory whatever the number or length of the documents. Small batches also run
#: faster on CPU (they stay in cache): 512-2048 tokens measured best on 2 cores.
DEFAULT_MAX_BATCH_TOKENS = 1024


@dataclass(frozen=True)
class RerankResult:
    """One reranked document: its position in the input, its MaxSim score and its text."""

    index: int
    score: float
    document: str


class ColBERT:
    """A ColBERT late-interaction model running on ONNX Runtime.

    Build one with :meth:`from_pretrained`. Encoding returns one float32 ``[n_tokens, dim]``
    array per text, every row of unit L2 norm.
    """

    def __init__(
        self,
        tokenizer: ColBERTTokenizer,
        encoder: OnnxEncoder,
        *,
        name: str = "colbert",
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        files: ModelFiles | None = None,
        cache: EmbeddingCache | bool | None = True,
        settings: ModelSettings | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.settings = settings
        self.encoder = encoder
        self.name = name
        self.files = files
        self.max_batch_tokens = check_int(max_batch_tokens, "max_batch_tokens")
        self.cache = _make_cache(cache)
        self._model_key: str | None = None

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str],
        *,
        model_file: str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool | None = None,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
        cpu_fallback: bool = False,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        cache: EmbeddingCache | bool | None = True,
        optimize: Optimize = "auto",
        quantize: Quantize = None,
        **overrides: Any,
    ) -> ColBERT:
        """Load a ColBERT ONNX model from a local directory or a Hugging Face repo id.

        Args:
            name_or_path: a directory holding ``tokenizer.json`` and an ONNX graph, or a
                Hugging Face repo id (e.g. ``"answerdotai/answerai-colbert-small-v1"``).
            model_file: the graph's path inside the directory or repo, when not the default.
            revision: a hub branch, tag or commit to pin.
            cache_dir: the Hugging Face cache directory (default: the hub's own default).
            local_files_only: only use cached files; ``None`` follows ``HF_HUB_OFFLINE``.
            threads: ONNX Runtime intra-op threads (default: ONNX Runtime's choice).
            providers: ONNX Runtime execution providers, e.g. ``["CUDAExecutionProvider",
                "CPUExecutionProvider"]`` (default: the CPU). One that the installed ONNX
                Runtime lacks or cannot start raises
                :class:`~colbert_plugins.errors.ProviderUnavailableError` before anything is
                loaded (GPU: install ``colbert-plugins-gpu``).
            cpu_fallback: instead of that error, leave such providers out with a warning.
            max_batch_tokens: cap on padded tokens per encoder call (bounds memory).
            cache: the document-embedding cache: ``True`` (default) for a private in-memory
                LRU of 256 MiB, an :class:`~colbert_plugins.cache.EmbeddingCache` to share one
                (optionally persisted to SQLite) between models, ``False``/``None`` for none.
            optimize: fuse attention / layer norm / GELU of BERT-family graphs once and cache
                the result (``"auto"``: when the ``optimize`` extra is installed).
            quantize: ``"int8"`` for int8: the model's own ``model_int8.onnx`` when it ships
                one, else int8 dynamic quantization with our recipe (made once and cached):
                faster on CPU, slightly different scores (1.24-1.35x and top-10 agreement 0.905
                with float32 on the proxy model and 2 AVX2 cores; see docs/speed.md).
            **overrides: any :class:`ColBERTConfig` field, e.g. ``document_length=180``.
        """
        unknown = sorted(set(overrides) - set(ColBERTConfig.field_names()))
        if unknown:
            raise InvalidArgumentTypeError(
                f"from_pretrained() got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"ColBERT settings are: {', '.join(ColBERTConfig.field_names())}"
            )
        check_providers(providers, cpu_fallback=cpu_fallback)  # before any download
        files = resolve_model_files(
            name_or_path,
            model_file=model_file,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            int8=quantize == "int8",
        )
        raw_tokenizer = load_tokenizer(files.tokenizer_path)
        settings = resolve_settings(files, overrides, raw_tokenizer)
        tokenizer = ColBERTTokenizer(raw_tokenizer, settings.config)
        if files.int8_path is not None:
            graph = files.int8_path  # the model's own int8 graph, as its authors made it
        else:
            graph = prepare_graph(
                files.onnx_path, files.json("config.json"), optimize=optimize, quantize=quantize
            )
        encoder = OnnxEncoder(
            graph, threads=threads, providers=providers, cpu_fallback=cpu_fallback
        )
        logger.info(
            "loaded ColBERT model %s from %s (running %s)", files.name, files.onnx_path, graph
        )
        model = cls(
            tokenizer,
            encoder,
            name=files.name,
            max_batch_tokens=max_batch_tokens,
            files=files,
            cache=cache,
            settings=settings,
        )
        model._check_embedding_dim()
        return model

    def _check_embedding_dim(self) -> None:
        """The vector size the model's files declare must be the graph's output size."""
        declared = self.config.embedding_dim
        if declared is None or declared == self.dim:
            return
        origin = self.settings.source("embedding_dim") if self.settings else "embedding_dim"
        raise ModelLoadError(
            f"{origin} says the model's vectors have {declared} dimensions, but the graph "
            f"{self.encoder.path.name} outputs {self.dim}: the config and the graph belong to "
            "different models (export them together), or pass embedding_dim=None to skip the "
            "check"
        )

    @property
    def config(self) -> ColBERTConfig:
        """The ColBERT settings in force (frozen)."""
        return self.tokenizer.config

    @property
    def dim(self) -> int:
        """Size of each token vector."""
        if self.encoder.dim is None:  # graph with a symbolic output size: run it once
            self.encode_queries([""])
        assert self.encoder.dim is not None
        return self.encoder.dim

    def __repr__(self) -> str:
        return f"ColBERT(name={self.name!r}, dim={self.encoder.dim}, config={self.config})"

    # -- encoding ----------------------------------------------------------------------------

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> list[FloatArray]:
        """Encode queries: one ``[max(query_length, n_tokens), dim]`` array per query.

        Queries are padded with the mask token up to ``query_length`` and every vector is
        kept, including those of the padding (query augmentation); without
        ``query_expansion`` a query keeps only its own tokens' vectors (``[n_tokens, dim]``).
        Like documents, they are batched by similar length under the ``max_batch_tokens``
        budget.
        """
        texts = check_texts(texts, "texts")
        batch_size = check_int(batch_size, "batch_size")
        results: list[FloatArray] = [np.empty((0, 0), np.float32)] * len(texts)
        rows = self.tokenizer.query_rows(texts)
        widths = [self.tokenizer.query_width(row) for row in rows]
        for batch in self._length_batches(widths, batch_size):
            tokens = self.tokenizer.pad_queries([rows[i] for i in batch])
            vectors = l2_normalize(self._run(tokens.input_ids, tokens.attention_mask))
            for row, i in enumerate(batch):
                results[i] = vectors[row, : tokens.lengths[row]].copy()
        return results

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32, show_progress: bool = False
    ) -> list[FloatArray]:
        """Encode documents: one ``[n_kept_tokens, dim]`` array per document, in input order.

        Documents are truncated to ``document_length`` tokens, batched by similar token
        length, and the vectors of padding and skiplist (punctuation) tokens are dropped.
        Documents already in the cache are not encoded again; repeated texts are encoded once.
        """
        texts = check_texts(texts, "texts")
        batch_size = check_int(batch_size, "batch_size")
        vectors = self._document_vectors(texts, batch_size, show_progress)
        # Cached arrays are read-only and repeated texts share one array: hand the caller
        # its own copies.
        owned: list[FloatArray] = []
        seen: set[int] = set()
        for v in vectors:
            owned.append(v if v.flags.writeable and id(v) not in seen else v.copy())
            seen.add(id(v))
        return owned

    @property
    def model_key(self) -> str:
        """Identity of what document vectors depend on (graph, tokenizer, settings)."""
        if self._model_key is None:
            self._model_key = _model_key(self)
        return self._model_key

    def key_details(self) -> dict[str, Any]:
        """What :attr:`model_key` hashes, readably (JSON-ready): fingerprints of the graph and
        the tokenizer, and the settings document vectors depend on. Indexes record it, so
        that a model mismatch can say which of these differs."""
        cfg = self.config
        return {
            "graph": graph_fingerprint(self.encoder.path),
            "tokenizer": self.tokenizer.fingerprint,
            "document_length": cfg.document_length,
            "document_marker": cfg.document_marker,
            "pad_token": cfg.pad_token,
            "skiplist": list(cfg.skiplist),
            "long_documents": cfg.long_documents,
            "window_stride": self.tokenizer.window_stride,
            "family": cfg.family,
            "lowercase": cfg.lowercase,
            "document_prompt": cfg.document_prompt,
        }

    def _document_vectors(
        self, texts: list[str], batch_size: int = 32, show_progress: bool = False
    ) -> list[FloatArray]:
        """Vectors of each text, from the cache where possible (may be read-only)."""
        unique = list(dict.fromkeys(texts))
        found: list[FloatArray | None] = [None] * len(unique)
        keys: list[str] = []
        if self.cache is not None:
            keys = [text_key(self.model_key, t) for t in unique]
            found = self.cache.get_many(keys)
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            computed = self._encode_documents_uncached(
                [unique[i] for i in missing], batch_size, show_progress
            )
            for i, vectors in zip(missing, computed, strict=True):
                found[i] = vectors
            if self.cache is not None:
                self.cache.put_many([(keys[i], v) for i, v in zip(missing, computed, strict=True)])
        by_text = dict(zip(unique, found, strict=True))
        return [by_text[t] for t in texts]  # type: ignore[misc]

    def _encode_documents_uncached(
        self, texts: list[str], batch_size: int, show_progress: bool
    ) -> list[FloatArray]:
        if self.config.long_documents == "windows":
            return self._encode_document_windows(texts, batch_size, show_progress)
        ids = self.tokenizer.tokenize_documents(texts)
        results: list[FloatArray] = [np.empty((0, 0), np.float32)] * len(texts)
        batches = list(self._length_batches([len(row) for row in ids], batch_size))
        for batch in _progress(batches, show_progress, total_items=len(texts)):
            input_ids, attention = _pad([ids[i] for i in batch], self.tokenizer.ids.pad)
            vectors = l2_normalize(self._run(input_ids, attention))
            keep = self.tokenizer.document_keep_mask(input_ids, attention)
            for row, i in enumerate(batch):
                results[i] = vectors[row][keep[row]]
        return results

    def _length_batches(self, lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
        """Indices grouped by similar length, each group within the token budget."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        batch: list[int] = []
        for i in order:
            # Sorted longest first, so the batch's padded width is its first member's length.
            width = lengths[batch[0]] if batch else lengths[i]
            if batch and (
                len(batch) >= batch_size or (len(batch) + 1) * width > self.max_batch_tokens
            ):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def _run(self, input_ids: IdArray, attention_mask: IdArray) -> FloatArray:
        output = self.encoder(input_ids, attention_mask)
        if not np.isfinite(output).all():
            raise ModelOutputError(
                f"the ONNX graph {self.encoder.path.name} produced NaN or infinite vectors; "
                "the model file is likely corrupt or was exported incorrectly"
            )
        if not output[attention_mask.astype(bool)].any(axis=-1).all():
            raise ModelOutputError(
                f"the ONNX graph {self.encoder.path.name} produced all-zero vectors for real "
                "tokens; the model file is likely corrupt or was exported incorrectly"
            )
        return output

    # -- scoring -----------------------------------------------------------------------------

    def score(
        self,
        query: str,
        documents: Sequence[str],
        *,
        normalize: bool | None = None,
        batch_size: int = 32,
        show_progress: bool = False,
    ) -> FloatArray:
        """MaxSim score of each document for the query, in input order (float32 array).

        Args:
            query: the query text.
            documents: the document texts.
            normalize: divide by the number of query vectors (scores in [-1, 1]);
                ``None`` follows ``config.normalize_scores``.
            batch_size: documents per encoder call.
            show_progress: a progress bar while documents are encoded (windows, with
                ``long_documents="windows"``).
        """
        query = check_query(query)
        documents = check_texts(documents, "documents")
        batch_size = check_int(batch_size, "batch_size")
        if not documents:
            return np.zeros(0, dtype=np.float32)
        query_vectors = self.encode_queries([query])[0]
        # Score each distinct text once, so identical documents get identical scores (a
        # matrix product may round the same dot product differently in another column).
        unique = list(dict.fromkeys(documents))
        vectors = self._document_vectors(unique, batch_size, show_progress)
        scores = self.score_vectors(query_vectors, vectors, normalize=normalize)
        by_text = dict(zip(unique, scores.tolist(), strict=True))
        return np.array([by_text[d] for d in documents], dtype=np.float32)

    def score_vectors(
        self, query: FloatArray, documents: Sequence[FloatArray], *, normalize: bool | None = None
    ) -> FloatArray:
        """MaxSim of already encoded vectors (``normalize=None`` follows the config)."""
        scores = maxsim_scores(query, documents)
        if self.config.normalize_scores if normalize is None else normalize:
            scores /= np.float32(max(1, query.shape[0]))
        return scores

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        top_n: int | None = None,
        *,
        show_progress: bool = False,
    ) -> list[RerankResult]:
        """Documents sorted by MaxSim score, best first (ties keep input order).

        Args:
            query: the query text.
            documents: candidate texts.
            top_n: keep only the best ``top_n`` (``None``: all).
            show_progress: a progress bar while documents are encoded.
        """
        top_n = check_top_n(top_n)
        query = check_query(query)
        documents = check_texts(documents, "documents")
        scores = self.score(query, documents, show_progress=show_progress)
        return [
            RerankResult(int(i), float(scores[i]), documents[i]) for i in rank_order(scores, top_n)
        ]

    # -- long documents and explanations -------------------------------------------------------

    def _encode_document_windows(
        self, texts: list[str], batch_size: int, show_progress: bool
    ) -> list[FloatArray]:
        """Encode documents as overlapping windows (``long_documents="windows"``) and stitch.

        Every window of every document goes through the same length-sorted batching. A
        document's vectors are its windows' kept vectors in window order: each window's
        ``[CLS]`` and marker, the text tokens it owns (see
        :meth:`.ColBERTTokenizer.document_windows`), its ``[SEP]``; text tokens therefore
        come in document order, each once.
        """
        docs = self.tokenizer.document_windows(texts)
        rows = [(d, k) for d, doc in enumerate(docs) for k in range(len(doc.rows))]
        empty = np.empty((0, 0), np.float32)
        pieces: list[list[FloatArray]] = [[empty] * len(doc.rows) for doc in docs]
        batches = list(self._length_batches([len(docs[d].rows[k]) for d, k in rows], batch_size))
        for batch in _progress(batches, show_progress, total_items=len(rows), unit="window"):
            input_ids, attention = _pad(
                [docs[rows[i][0]].rows[rows[i][1]] for i in batch], self.tokenizer.ids.pad
            )
            vectors = l2_normalize(self._run(input_ids, attention))
            keep = self.tokenizer.document_keep_mask(input_ids, attention)
            for r, i in enumerate(batch):
                d, k = rows[i]
                owned = docs[d].owned[k]
                pieces[d][k] = vectors[r, : len(owned)][keep[r, : len(owned)] & owned]
        return [np.concatenate(p, axis=0) for p in pieces]

    def explain(self, query: str, document: str, include_expansion: bool = False) -> Explanation:
        """Which document token each query token matched, and how much it added to the score.

        See :func:`colbert_plugins.explain.explain`; the matches of every query vector sum
        to ``self.score(query, [document])[0]``.
        """
        from .explain import explain

        query = check_query(query)
        return explain(self, query, document, include_expansion=include_expansion)


def rank_order(scores: FloatArray, top_n: int | None = None) -> list[int]:
    """Indices sorted by descending score, ties in input order, cut to ``top_n``.

    >>> rank_order(np.array([0.5, 2.0, 0.5, 1.0], dtype=np.float32), top_n=3)
    [1, 3, 0]
    """
    order = np.argsort(-scores, kind="stable")
    return [int(i) for i in (order if top_n is None else order[:top_n])]


def check_top_n(top_n: int | None, name: str = "top_n") -> int | None:
    """Validate a ``top_n`` argument: None or a positive integer."""
    return check_optional_int(top_n, name)


def _make_cache(cache: EmbeddingCache | bool | None) -> EmbeddingCache | None:
    if cache is True:
        return EmbeddingCache()
    if cache is None or cache is False:
        return None
    if not isinstance(cache, EmbeddingCache):
        raise InvalidArgumentTypeError(
            f"cache must be True, False, None or an EmbeddingCache, got {type(cache).__name__}"
        )
    return cache


def _model_key(model: ColBERT) -> str:
    """Hash of the graph that runs, the tokenizer and the document settings."""
    cfg = model.config
    settings: tuple[Any, ...] = (
        cfg.document_length,
        cfg.document_marker,
        cfg.pad_token,
        cfg.skiplist,
    )
    if cfg.long_documents != "truncate":  # truncating keys stay those of earlier versions
        settings += (cfg.long_documents, model.tokenizer.window_stride)
    if cfg.family != "fastembed" or cfg.lowercase or cfg.document_prompt:
        settings += (cfg.family, cfg.lowercase, cfg.document_prompt)
    parts = (graph_fingerprint(model.encoder.path), model.tokenizer.fingerprint, repr(settings))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _pad(rows: Sequence[IdArray], pad_id: int) -> tuple[IdArray, IdArray]:
    width = max(len(r) for r in rows)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    attention = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        attention[i, : len(row)] = 1
    return input_ids, attention


def _progress(
    batches: list[list[int]], show: bool, *, total_items: int, unit: str = "document"
) -> Iterator[list[int]]:
    if not show:
        yield from batches
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with huggingface_hub
        tqdm = None
    if tqdm is None:
        done = 0
        for batch in batches:
            yield batch
            done += len(batch)
            logger.info("encoded %d/%d %ss", done, total_items, unit)
        return
    with tqdm(total=total_items, unit=unit[:3], desc=f"Encoding {unit}s") as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch))
