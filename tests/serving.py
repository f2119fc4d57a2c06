"""Helpers for the server tests: a ColBERT whose document encoding can be paused or poisoned.

Overload (503), isolation of a failing request and graceful shutdown need requests that are
still waiting when the next one arrives; on a fast tiny model that only happens if the model
call can be held. Everything else runs the unmodified model.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from colbert_plugins import ColBERT

POISON = "poison poison poison"


class HeldColBERT(ColBERT):
    """The same tokenizer and encoder as ``model``; ``encode_documents`` waits for
    :attr:`release` and fails on :data:`POISON`."""

    def __init__(self, model: ColBERT) -> None:
        super().__init__(model.tokenizer, model.encoder, name=model.name, cache=True)
        self.release = threading.Event()
        self.entered = threading.Event()

    def encode_documents(self, texts: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        if not self.release.wait(30):
            raise TimeoutError("test model was never released")
        if POISON in texts:
            raise RuntimeError("poisoned document")
        return super().encode_documents(texts, *args, **kwargs)
