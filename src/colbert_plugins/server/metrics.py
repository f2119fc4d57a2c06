"""Server metrics in the Prometheus text exposition format (version 0.0.4).

Counters, gauges and histograms with labels, thread-safe, written by hand: the format is a
few lines of text and a private registry per server keeps several servers in one process
(tests) apart.

>>> m = Metrics()
>>> m.observe_request("/v1/rerank", 200, 0.02, documents=3)
>>> "colbert_requests_total{endpoint=\\"/v1/rerank\\",code=\\"200\\"} 1" in m.render()
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Request latency buckets (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Requests per model batch.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

Labels = tuple[tuple[str, str], ...]


@dataclass
class _Histogram:
    buckets: tuple[float, ...]
    counts: list[int]
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1


class Metrics:
    """The server's counters; :meth:`render` gives the ``/metrics`` text.

    Args:
        cache_stats: returns ``(hits, misses, entries, bytes)`` of the document cache at
            scrape time, or ``None`` when there is no cache.
    """

    def __init__(self, cache_stats: Callable[[], tuple[int, int, int, int] | None] | None = None):
        self._lock = threading.Lock()
        self._cache_stats = cache_stats
        self._requests: dict[Labels, int] = {}
        self._latency: dict[Labels, _Histogram] = {}
        self._documents = 0
        self._encoded = 0
        self._batches = _Histogram(tuple(float(b) for b in BATCH_BUCKETS), [0] * len(BATCH_BUCKETS))
        self._queue_depth = 0
        self._in_flight = 0

    # -- updates ---------------------------------------------------------------------------

    def observe_request(
        self, endpoint: str, code: int, seconds: float, *, documents: int = 0
    ) -> None:
        """One answered request: its endpoint, status code and latency."""
        with self._lock:
            key = (("endpoint", endpoint), ("code", str(code)))
            self._requests[key] = self._requests.get(key, 0) + 1
            hist_key = (("endpoint", endpoint),)
            hist = self._latency.get(hist_key)
            if hist is None:
                hist = _Histogram(LATENCY_BUCKETS, [0] * len(LATENCY_BUCKETS))
                self._latency[hist_key] = hist
            hist.observe(seconds)
            self._documents += documents

    def observe_batch(self, requests: int, encoded: int) -> None:
        """One model call: how many requests it served and documents it encoded."""
        with self._lock:
            self._batches.observe(float(requests))
            self._encoded += encoded

    def set_queue_depth(self, depth: int) -> None:
        with self._lock:
            self._queue_depth = depth

    def add_in_flight(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta

    # -- exposition ------------------------------------------------------------------------

    def render(self) -> str:
        """The metrics in the Prometheus text format."""
        cache = self._cache_stats() if self._cache_stats is not None else None
        out: list[str] = []
        with self._lock:
            _family(out, "colbert_requests_total", "counter", "HTTP requests answered.")
            for labels, value in sorted(self._requests.items()):
                out.append(f"colbert_requests_total{_labels(labels)} {value}")
            _family(
                out,
                "colbert_request_duration_seconds",
                "histogram",
                "Time from receiving a request to its answer.",
            )
            for labels, hist in sorted(self._latency.items()):
                _histogram(out, "colbert_request_duration_seconds", labels, hist)
            _scalar(
                out,
                "colbert_documents_total",
                "counter",
                "Documents received in rerank requests.",
                self._documents,
            )
            _scalar(
                out,
                "colbert_documents_encoded_total",
                "counter",
                "Documents run through the model (not found in the cache).",
                self._encoded,
            )
            _family(out, "colbert_batch_requests", "histogram", "Requests served per model call.")
            _histogram(out, "colbert_batch_requests", (), self._batches)
            _scalar(out, "colbert_queue_depth", "gauge", "Requests waiting.", self._queue_depth)
            _scalar(
                out,
                "colbert_requests_in_flight",
                "gauge",
                "Requests being answered.",
                self._in_flight,
            )
        if cache is not None:
            hits, misses, entries, size = cache
            _scalar(out, "colbert_cache_hits_total", "counter", "Cache hits.", hits)
            _scalar(out, "colbert_cache_misses_total", "counter", "Cache misses.", misses)
            _scalar(out, "colbert_cache_entries", "gauge", "Documents in the cache.", entries)
            _scalar(out, "colbert_cache_bytes", "gauge", "Cache memory in use.", size)
        return "\n".join(out) + "\n"


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")


def _scalar(out: list[str], name: str, kind: str, help_text: str, value: float) -> None:
    _family(out, name, kind, help_text)
    out.append(f"{name} {value}")


def _histogram(out: list[str], name: str, labels: Labels, hist: _Histogram) -> None:
    for bound, count in zip(hist.buckets, hist.counts, strict=True):
        out.append(f"{name}_bucket{_labels((*labels, ('le', _number(bound))))} {count}")
    out.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {hist.count}")
    out.append(f"{name}_sum{_labels(labels)} {hist.total!r}")
    out.append(f"{name}_count{_labels(labels)} {hist.count}")


def _labels(labels: Sequence[tuple[str, str]]) -> str:
    """``{a="x",b="y"}`` with the values escaped, or nothing.

    >>> _labels((("endpoint", 'a"b'),))
    '{endpoint="a\\\\"b"}'
    """
    if not labels:
        return ""
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    )
    return "{" + body + "}"


def _number(value: float) -> str:
    """A bucket bound as Prometheus writes it.

    >>> _number(1.0), _number(0.25)
    ('1.0', '0.25')
    """
    return repr(float(value))
