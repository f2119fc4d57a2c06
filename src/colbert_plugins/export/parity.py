"""Compare a model with a reference implementation's outputs: token ids, vectors, rankings.

The reference (PyLate, for models it configured) is captured once as
:class:`ReferenceOutputs`: texts, the reference's tokenization of each text alone, and its
output vectors. :func:`check_parity` runs our model on the same texts and reports, per text,
whether the token ids and attention masks are identical and the largest absolute difference
between vectors, and per query whether the MaxSim ranking of the documents is the same.

This is what ``colbert-plugins export`` runs after exporting (against live PyLate), and what
``benchmarks/parity_pylate.py`` and the tests run against the committed fixtures
(``tests/fixtures/pylate/<name>/reference.json`` + ``reference.npz``), without torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ModelFilesError
from ..scoring import maxsim_scores

if TYPE_CHECKING:
    from ..model import ColBERT

__all__ = [
    "DEFAULT_ATOL",
    "ParityReport",
    "ReferenceOutputs",
    "TextCheck",
    "check_parity",
]

FloatArray = npt.NDArray[np.float32]

#: Largest absolute difference allowed between a vector of ours and the reference's.
DEFAULT_ATOL = 1e-4

REFERENCE_JSON = "reference.json"
REFERENCE_NPZ = "reference.npz"


@dataclass(frozen=True)
class ReferenceOutputs:
    """A reference implementation's tokenization and vectors for some queries and documents.

    ``query_input_ids[i]`` / ``query_attention_mask[i]`` are the reference's tokenization of
    ``queries[i]`` alone (unpadded but for query expansion); ``query_vectors[i]`` the vectors it
    returns for it (``[n, dim]``). Same for documents.
    """

    queries: list[str]
    documents: list[str]
    query_input_ids: list[list[int]]
    query_attention_mask: list[list[int]]
    document_input_ids: list[list[int]]
    document_attention_mask: list[list[int]]
    query_vectors: list[FloatArray]
    document_vectors: list[FloatArray]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, n, lists in (
            (
                "query",
                len(self.queries),
                (self.query_input_ids, self.query_attention_mask, self.query_vectors),
            ),
            (
                "document",
                len(self.documents),
                (self.document_input_ids, self.document_attention_mask, self.document_vectors),
            ),
        ):
            if any(len(values) != n for values in lists):
                raise ModelFilesError(
                    f"reference outputs are inconsistent: {n} {kind} texts but "
                    f"{[len(v) for v in lists]} ids / masks / vectors"
                )

    @classmethod
    def load(cls, directory: str | Path) -> ReferenceOutputs:
        """Read ``reference.json`` and ``reference.npz`` from a directory."""
        directory = Path(directory)
        path = directory / REFERENCE_JSON
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            with np.load(directory / REFERENCE_NPZ, allow_pickle=False) as arrays:
                query_vectors = [
                    arrays[f"query_{i}"].astype(np.float32) for i in range(len(data["queries"]))
                ]
                document_vectors = [
                    arrays[f"document_{i}"].astype(np.float32)
                    for i in range(len(data["documents"]))
                ]
            return cls(
                queries=list(data["queries"]),
                documents=list(data["documents"]),
                query_input_ids=data["query_input_ids"],
                query_attention_mask=data["query_attention_mask"],
                document_input_ids=data["document_input_ids"],
                document_attention_mask=data["document_attention_mask"],
                query_vectors=query_vectors,
                document_vectors=document_vectors,
                metadata={k: v for k, v in data.items() if k not in _LIST_FIELDS},
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelFilesError(f"cannot read reference outputs in {directory}: {exc}") from exc

    def save(self, directory: str | Path) -> None:
        """Write ``reference.json`` (metadata, texts, token ids) and ``reference.npz``."""
        directory = Path(directory)
        data: dict[str, Any] = dict(self.metadata)
        data.update(
            queries=self.queries,
            documents=self.documents,
            query_input_ids=self.query_input_ids,
            query_attention_mask=self.query_attention_mask,
            document_input_ids=self.document_input_ids,
            document_attention_mask=self.document_attention_mask,
        )
        (directory / REFERENCE_JSON).write_text(
            json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        arrays = {f"query_{i}": v.astype(np.float32) for i, v in enumerate(self.query_vectors)}
        arrays.update(
            {f"document_{i}": v.astype(np.float32) for i, v in enumerate(self.document_vectors)}
        )
        np.savez_compressed(directory / REFERENCE_NPZ, **arrays)  # type: ignore[arg-type]


_LIST_FIELDS = frozenset(
    {
        "queries",
        "documents",
        "query_input_ids",
        "query_attention_mask",
        "document_input_ids",
        "document_attention_mask",
    }
)


@dataclass(frozen=True)
class TextCheck:
    """One text compared: token ids, attention mask and vectors, ours against the reference."""

    kind: str  # "query" or "document"
    index: int
    text: str
    ours_ids: list[int]
    reference_ids: list[int]
    ours_mask: list[int]
    reference_mask: list[int]
    ours_shape: tuple[int, ...]
    reference_shape: tuple[int, ...]
    max_abs_diff: float  # inf when the shapes differ

    @property
    def ids_match(self) -> bool:
        return self.ours_ids == self.reference_ids

    @property
    def mask_match(self) -> bool:
        return self.ours_mask == self.reference_mask

    def ok(self, atol: float = DEFAULT_ATOL) -> bool:
        return self.ids_match and self.mask_match and self.max_abs_diff <= atol

    def describe(self) -> str:
        """One line saying what differs (for error messages)."""
        parts = []
        if not self.ids_match:
            at = _first_difference(self.ours_ids, self.reference_ids)
            parts.append(
                f"token ids differ at position {at}"
                f" (ours {_clip(self.ours_ids)}, reference {_clip(self.reference_ids)})"
            )
        if not self.mask_match:
            parts.append(
                "attention masks differ "
                f"(ours {_clip(self.ours_mask)}, reference {_clip(self.reference_mask)})"
            )
        if self.ours_shape != self.reference_shape:
            parts.append(f"vectors {self.ours_shape} vs reference {self.reference_shape}")
        else:
            parts.append(f"max |diff| {self.max_abs_diff:.2e}")
        return f"{self.kind} {self.index} {self.text[:40]!r}: " + "; ".join(parts)


@dataclass(frozen=True)
class ParityReport:
    """The outcome of :func:`check_parity`."""

    queries: list[TextCheck]
    documents: list[TextCheck]
    rankings_identical: list[bool]  # one per query: same MaxSim order of the documents
    atol: float = DEFAULT_ATOL

    @property
    def query_id_mismatches(self) -> int:
        return sum(not (c.ids_match and c.mask_match) for c in self.queries)

    @property
    def document_id_mismatches(self) -> int:
        return sum(not (c.ids_match and c.mask_match) for c in self.documents)

    @property
    def max_abs_diff(self) -> float:
        return max(self.worst_query_diff, self.worst_document_diff)

    @property
    def worst_query_diff(self) -> float:
        """The largest |difference| of a query vector."""
        return max((c.max_abs_diff for c in self.queries), default=0.0)

    @property
    def worst_document_diff(self) -> float:
        """The largest |difference| of a document vector."""
        return max((c.max_abs_diff for c in self.documents), default=0.0)

    @property
    def ok(self) -> bool:
        return all(c.ok(self.atol) for c in [*self.queries, *self.documents]) and all(
            self.rankings_identical
        )

    def failures(self) -> list[str]:
        """A line per text or ranking that differs."""
        lines = [c.describe() for c in [*self.queries, *self.documents] if not c.ok(self.atol)]
        lines += [
            f"query {i}: MaxSim ranking of the documents differs"
            for i, same in enumerate(self.rankings_identical)
            if not same
        ]
        return lines

    def summary(self) -> str:
        """A one-line summary: mismatches, largest difference, rankings."""
        worst_q, worst_d = self.worst_query_diff, self.worst_document_diff
        return (
            f"token-id mismatches: queries {self.query_id_mismatches}/{len(self.queries)}, "
            f"documents {self.document_id_mismatches}/{len(self.documents)}; "
            f"max |diff| queries {worst_q:.2e}, documents {worst_d:.2e} (tolerance "
            f"{self.atol:g}); rankings identical {sum(self.rankings_identical)}/"
            f"{len(self.rankings_identical)}"
        )

    def to_dict(self) -> dict[str, Any]:
        def text(c: TextCheck) -> dict[str, Any]:
            return {
                "index": c.index,
                "ids_match": c.ids_match,
                "mask_match": c.mask_match,
                "vectors": list(c.ours_shape),
                "reference_vectors": list(c.reference_shape),
                "max_abs_diff": None if math.isinf(c.max_abs_diff) else c.max_abs_diff,
            }

        return {
            "ok": self.ok,
            "atol": self.atol,
            "query_id_mismatches": self.query_id_mismatches,
            "document_id_mismatches": self.document_id_mismatches,
            "max_abs_diff": None if math.isinf(self.max_abs_diff) else self.max_abs_diff,
            "rankings_identical": self.rankings_identical,
            "queries": [text(c) for c in self.queries],
            "documents": [text(c) for c in self.documents],
        }


def check_parity(
    model: ColBERT, reference: ReferenceOutputs, *, atol: float = DEFAULT_ATOL
) -> ParityReport:
    """Run ``model`` on the reference's texts and compare (see the module docstring).

    Queries: our ids and attention mask are the first ``lengths[i]`` positions of
    ``model.tokenizer.tokenize_queries`` (the positions whose vectors are returned).
    Documents: ``model.tokenizer.tokenize_documents`` (unpadded, every position attended).
    """
    tokenized = model.tokenizer.tokenize_queries(reference.queries)
    query_vectors = model.encode_queries(reference.queries)
    queries = []
    for i, text in enumerate(reference.queries):
        n = int(tokenized.lengths[i])
        queries.append(
            _check(
                "query",
                i,
                text,
                [int(x) for x in tokenized.input_ids[i, :n]],
                [int(x) for x in tokenized.attention_mask[i, :n]],
                reference.query_input_ids[i],
                reference.query_attention_mask[i],
                query_vectors[i],
                reference.query_vectors[i],
            )
        )
    document_ids = model.tokenizer.tokenize_documents(reference.documents)
    document_vectors = model.encode_documents(reference.documents)
    documents = []
    for i, text in enumerate(reference.documents):
        ids = [int(x) for x in document_ids[i]]
        documents.append(
            _check(
                "document",
                i,
                text,
                ids,
                [1] * len(ids),
                reference.document_input_ids[i],
                reference.document_attention_mask[i],
                document_vectors[i],
                reference.document_vectors[i],
            )
        )
    rankings = []
    for q, r in zip(query_vectors, reference.query_vectors, strict=True):
        ours_order = _ranking(q, document_vectors)
        rankings.append(
            ours_order is not None and ours_order == _ranking(r, reference.document_vectors)
        )
    return ParityReport(queries, documents, rankings, atol)


def _check(
    kind: str,
    index: int,
    text: str,
    ours_ids: list[int],
    ours_mask: list[int],
    reference_ids: Sequence[int],
    reference_mask: Sequence[int],
    ours: FloatArray,
    reference: FloatArray,
) -> TextCheck:
    if ours.shape == reference.shape:
        diff = float(np.abs(ours.astype(np.float64) - reference).max()) if ours.size else 0.0
    else:
        diff = math.inf
    return TextCheck(
        kind=kind,
        index=index,
        text=text,
        ours_ids=ours_ids,
        reference_ids=[int(x) for x in reference_ids],
        ours_mask=ours_mask,
        reference_mask=[int(x) for x in reference_mask],
        ours_shape=tuple(ours.shape),
        reference_shape=tuple(reference.shape),
        max_abs_diff=diff,
    )


def _ranking(query: FloatArray, documents: Sequence[FloatArray]) -> list[int] | None:
    """Document indices by decreasing MaxSim (stable on ties); None if dimensions differ."""
    if query.ndim != 2 or any(d.ndim != 2 or d.shape[1] != query.shape[1] for d in documents):
        return None
    scores = maxsim_scores(query.astype(np.float32), [d.astype(np.float32) for d in documents])
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def _first_difference(a: Sequence[int], b: Sequence[int]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _clip(values: Sequence[int], n: int = 12) -> str:
    shown = ", ".join(str(v) for v in values[:n])
    return f"[{shown}{', ...' if len(values) > n else ''}] ({len(values)})"
