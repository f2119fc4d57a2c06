"""Server metrics for ``GET /metrics``, on :mod:`prometheus_client`.

Every :class:`Metrics` has its own ``CollectorRegistry``: two servers (two apps) in one process
never share a counter, and nothing is registered in prometheus_client's global registry. The
document cache's counters are read when ``/metrics`` is scraped.

>>> m = Metrics()
>>> m.observe_request("/v1/rerank", 200, 0.02, documents=3)
>>> 'colbert_requests_total{code="200",endpoint="/v1/rerank"} 1.0' in m.render()
True
>>> 'colbert_requests_total{code="200",endpoint="/v1/rerank"}' in Metrics().render()
False
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics"]

#: The Prometheus text format that :func:`prometheus_client.generate_latest` writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Request latency buckets (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Requests per model batch.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

CacheStats = Callable[[], "tuple[int, int, int, int] | None"]


class Metrics:
    """The server's counters in a registry of their own; :meth:`render` gives the text.

    Args:
        cache_stats: returns ``(hits, misses, entries, bytes)`` of the document cache at
            scrape time, or ``None`` when there is no cache.
    """

    def __init__(self, cache_stats: CacheStats | None = None) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._requests = Counter(
            "colbert_requests",
            "HTTP requests answered.",
            ["endpoint", "code"],
            registry=registry,
        )
        self._latency = Histogram(
            "colbert_request_duration_seconds",
            "Time from receiving a request to its answer.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._documents = Counter(
            "colbert_documents", "Documents received in rerank requests.", registry=registry
        )
        self._encoded = Counter(
            "colbert_documents_encoded",
            "Documents run through the model (not found in the cache).",
            registry=registry,
        )
        self._batches = Histogram(
            "colbert_batch_requests",
            "Requests served per model call.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self._queue_depth = Gauge("colbert_queue_depth", "Requests waiting.", registry=registry)
        self._in_flight = Gauge(
            "colbert_requests_in_flight", "Requests being answered.", registry=registry
        )
        if cache_stats is not None:
            registry.register(_CacheCollector(cache_stats))

    def observe_request(
        self, endpoint: str, code: int, seconds: float, *, documents: int = 0
    ) -> None:
        """One answered request: its endpoint, status code and latency."""
        self._requests.labels(endpoint=endpoint, code=str(code)).inc()
        self._latency.labels(endpoint=endpoint).observe(seconds)
        self._documents.inc(documents)

    def observe_batch(self, requests: int, encoded: int) -> None:
        """One model call: how many requests it served and documents it encoded."""
        self._batches.observe(requests)
        self._encoded.inc(encoded)

    def set_queue_depth(self, depth: int) -> None:
        self._queue_depth.set(depth)

    def add_in_flight(self, delta: int) -> None:
        self._in_flight.inc(delta)

    @property
    def in_flight(self) -> int:
        """Requests being answered now."""
        return int(self.registry.get_sample_value("colbert_requests_in_flight") or 0)

    def render(self) -> str:
        """The metrics in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry).decode("utf-8")


class _CacheCollector(Collector):
    """The document cache's counters, read at scrape time."""

    def __init__(self, stats: CacheStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        if stats is None:
            return
        hits, misses, entries, size = stats
        yield CounterMetricFamily("colbert_cache_hits", "Cache hits.", value=hits)
        yield CounterMetricFamily("colbert_cache_misses", "Cache misses.", value=misses)
        yield GaugeMetricFamily("colbert_cache_entries", "Documents in the cache.", value=entries)
        yield GaugeMetricFamily("colbert_cache_bytes", "Cache memory in use.", value=size)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # the names are fixed: registering must not call the cache
