"""Dynamic batching: requests that arrive together share one model call.

Request handlers :meth:`Batcher.submit` a query and its documents and await the scores. One
worker takes every request waiting in the queue (up to a document budget), encodes the union
of their documents once (each distinct text once; texts already in the model's cache are not
encoded again; the model batches them by length under its token budget), encodes their
distinct queries in one call, and hands each request its own MaxSim scores. While the model
runs, new requests queue up and form the next batch, so throughput rises with load instead of
requests waiting one behind another.

If a combined call fails, each request of the batch is retried alone, so one bad request
never fails the others. The model runs in one worker thread: ONNX Runtime already uses every
core given to it (``--threads``) for each call, and one call at a time keeps memory bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..model import ColBERT, FloatArray
from .metrics import Metrics

__all__ = ["Batcher", "QueueFullError", "Scores"]

logger = logging.getLogger(__name__)

#: Default number of requests that may wait for the model before new ones get 503.
DEFAULT_MAX_QUEUE = 256
#: Default number of documents one model call gathers (a request is never split).
DEFAULT_MAX_BATCH_DOCUMENTS = 512


class QueueFullError(Exception):
    """Too many requests are waiting: the caller should answer 503 and retry later."""


@dataclass(frozen=True)
class Scores:
    """MaxSim of each document of one request, in input order.

    ``raw`` is the sum over query vectors of the best dot product; ``normalized`` divides it
    by the number of query vectors (the range [-1, 1], comparable across queries).
    """

    raw: FloatArray
    query_vectors: int

    @property
    def normalized(self) -> FloatArray:
        scaled: FloatArray = (self.raw / np.float32(max(1, self.query_vectors))).astype(np.float32)
        return scaled


@dataclass
class _Job:
    query: str
    documents: list[str]
    future: asyncio.Future[Scores] = field(repr=False)


_STOP = None


class Batcher:
    """Queue + worker sharing one :class:`~colbert_plugins.ColBERT` between requests.

    Use :meth:`start` and :meth:`stop` from the event loop that calls :meth:`submit`.

    Args:
        model: the model; its document cache is shared by every request.
        max_queue: requests allowed to wait; beyond, :meth:`submit` raises
            :class:`QueueFullError`.
        max_batch_documents: documents gathered into one model call (a larger request still
            runs, alone).
        metrics: where batch sizes and encoded documents are counted.
    """

    def __init__(
        self,
        model: ColBERT,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_batch_documents: int = DEFAULT_MAX_BATCH_DOCUMENTS,
        metrics: Metrics | None = None,
    ) -> None:
        self.model = model
        self.max_queue = max_queue
        self.max_batch_documents = max_batch_documents
        self.metrics = metrics or Metrics()
        self._queue: asyncio.Queue[_Job | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stopped = False

    async def start(self) -> None:
        """Start the worker (on the running event loop)."""
        if self._worker is not None:
            return
        self._stopped = False
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="colbert-model")
        self._worker = asyncio.create_task(self._run(), name="colbert-batcher")

    async def stop(self) -> None:
        """Finish every request already queued, then stop the worker."""
        if self._worker is None or self._queue is None:
            return
        self._stopped = True
        await self._queue.put(_STOP)
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, query: str, documents: Sequence[str]) -> Scores:
        """The scores of ``documents`` for ``query``, computed with whatever else is waiting.

        Raises:
            QueueFullError: ``max_queue`` requests are already waiting.
            RuntimeError: the batcher is not started.
        """
        if self._queue is None or self._worker is None or self._stopped:
            raise RuntimeError("the batcher is not running; call start() first")
        future: asyncio.Future[Scores] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Job(query, list(documents), future))
        except asyncio.QueueFull:
            raise QueueFullError(
                f"{self.max_queue} requests are already waiting for the model"
            ) from None
        self.metrics.set_queue_depth(self._queue.qsize())
        return await future

    @property
    def queue_depth(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    # -- worker ----------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        pending: _Job | None = None  # taken from the queue but over the last batch's budget
        stopping = False
        while True:
            if pending is not None:
                job: _Job | None = pending
                pending = None
            elif stopping:  # after stop(): answer everything accepted, then end
                if queue.empty():
                    break
                job = queue.get_nowait()
            else:
                job = await queue.get()
            if job is _STOP:
                stopping = True
                continue
            assert job is not None
            jobs = [job]
            documents = len(job.documents)
            # Take what is waiting, within the document budget (a request is never split).
            while not queue.empty():
                nxt = queue.get_nowait()
                if nxt is _STOP:
                    stopping = True
                    continue
                if documents + len(nxt.documents) > self.max_batch_documents:
                    pending = nxt
                    break
                jobs.append(nxt)
                documents += len(nxt.documents)
            self.metrics.set_queue_depth(queue.qsize())
            await self._dispatch(jobs)

    async def _dispatch(self, jobs: list[_Job]) -> None:
        live = [j for j in jobs if not j.future.done()]  # skip requests whose client left
        if not live:
            return
        loop = asyncio.get_running_loop()
        outcomes = await loop.run_in_executor(self._executor, self._score_jobs, live)
        for job, outcome in zip(live, outcomes, strict=True):
            if job.future.done():
                continue
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

    def _score_jobs(self, jobs: list[_Job]) -> list[Scores | BaseException]:
        """Runs in the model thread: all jobs together, or each alone if that fails."""
        try:
            return list(self._score_together(jobs))
        except Exception as exc:
            if len(jobs) == 1:
                logger.exception("rerank request failed")
                return [exc]
            logger.warning("a batch of %d requests failed; retrying each alone", len(jobs))
        outcomes: list[Scores | BaseException] = []
        for job in jobs:
            try:
                outcomes.extend(self._score_together([job]))
            except Exception as exc:
                logger.exception("rerank request failed")
                outcomes.append(exc)
        return outcomes

    def _score_together(self, jobs: list[_Job]) -> list[Scores]:
        model = self.model
        texts = list(dict.fromkeys(t for job in jobs for t in job.documents))
        misses_before = _cache_misses(model)
        vectors = dict(zip(texts, model.encode_documents(texts), strict=True)) if texts else {}
        encoded = _cache_misses(model) - misses_before if model.cache is not None else len(texts)
        queries = list(dict.fromkeys(job.query for job in jobs))
        query_vectors = dict(zip(queries, model.encode_queries(queries), strict=True))
        results = []
        for job in jobs:
            q = query_vectors[job.query]
            # Score each distinct text once (identical texts get identical scores), like
            # ColBERT.score does.
            unique = list(dict.fromkeys(job.documents))
            if not unique:
                results.append(Scores(np.zeros(0, np.float32), int(q.shape[0])))
                continue
            raw = model.score_vectors(q, [vectors[t] for t in unique], normalize=False)
            by_text = dict(zip(unique, raw.tolist(), strict=True))
            scores = np.array([by_text[t] for t in job.documents], dtype=np.float32)
            results.append(Scores(raw=scores, query_vectors=int(q.shape[0])))
        self.metrics.observe_batch(len(jobs), encoded)
        return results


def _cache_misses(model: ColBERT) -> int:
    return model.cache.stats().misses if model.cache is not None else 0
