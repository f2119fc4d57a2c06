"""One fixed-length vector per text from a ColBERT model: what the embedding adapters share.

The LangChain ``ColBERTEmbeddings`` and the LlamaIndex ``ColBERTEmbedding`` both pool a
model's token vectors with :func:`~colbert_plugins.pooling.mean_pool` or
:class:`~colbert_plugins.pooling.Muvera`; this module holds that logic once, framework-free.

>>> PooledEmbedder("max")
Traceback (most recent call last):
...
colbert_plugins.errors.InvalidArgumentError: pooling must be "mean" or "muvera", got 'max'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .errors import InvalidArgumentError
from .model import ColBERT, FloatArray
from .pooling import DEFAULT_D_PROJ, DEFAULT_K_SIM, DEFAULT_R_REPS, DEFAULT_SEED, Muvera, mean_pool

__all__ = ["POOLINGS", "PooledEmbedder", "Pooling"]

Pooling = Literal["mean", "muvera"]
POOLINGS: tuple[Pooling, ...] = ("mean", "muvera")


class PooledEmbedder:
    """Pooled document and query vectors of a :class:`~colbert_plugins.ColBERT` model.

    Args:
        pooling: ``"mean"`` (the L2-normalized mean of the token vectors, ``dim`` floats) or
            ``"muvera"`` (fixed-dimensional encodings whose dot product approximates MaxSim;
            query and document encodings differ).
        k_sim, d_proj, r_reps, seed: the MUVERA parameters (see :class:`Muvera`).
    """

    def __init__(
        self,
        pooling: Pooling = "mean",
        *,
        k_sim: int = DEFAULT_K_SIM,
        d_proj: int | None = DEFAULT_D_PROJ,
        r_reps: int = DEFAULT_R_REPS,
        seed: int = DEFAULT_SEED,
    ) -> None:
        if pooling not in POOLINGS:
            raise InvalidArgumentError(f'pooling must be "mean" or "muvera", got {pooling!r}')
        Muvera(1, k_sim=k_sim, d_proj=d_proj, r_reps=r_reps, seed=seed)  # validates
        self.pooling = pooling
        self.k_sim, self.d_proj, self.r_reps, self.seed = k_sim, d_proj, r_reps, seed
        self._muvera: dict[int, Muvera] = {}

    def muvera(self, model: ColBERT) -> Muvera:
        """The MUVERA encoder for ``model``'s token size (built once per size)."""
        dim = model.dim
        muvera = self._muvera.get(dim)
        if muvera is None:
            # Deterministic: concurrent first calls build equal encoders, any one may win.
            muvera = Muvera(
                dim, k_sim=self.k_sim, d_proj=self.d_proj, r_reps=self.r_reps, seed=self.seed
            )
            self._muvera[dim] = muvera
        return muvera

    def dimension(self, model: ColBERT) -> int:
        """Length of the pooled vectors for ``model``."""
        return self.muvera(model).dimension if self.pooling == "muvera" else model.dim

    def documents(
        self, model: ColBERT, texts: Sequence[str], batch_size: int = 32
    ) -> list[list[float]]:
        """One pooled vector per document text, in input order."""
        vectors = model.encode_documents(texts, batch_size=batch_size)
        return self._pool(model, vectors, is_query=False)

    def queries(
        self, model: ColBERT, texts: Sequence[str], batch_size: int = 32
    ) -> list[list[float]]:
        """One pooled vector per query text, in input order."""
        return self._pool(model, model.encode_queries(texts, batch_size=batch_size), is_query=True)

    def _pool(
        self, model: ColBERT, vectors: list[FloatArray], *, is_query: bool
    ) -> list[list[float]]:
        if self.pooling == "muvera":
            muvera = self.muvera(model)
            encode = muvera.encode_query if is_query else muvera.encode_document
            return [encode(v).tolist() for v in vectors]
        return [mean_pool(v).tolist() for v in vectors]
