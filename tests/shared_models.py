"""Where the shared trained model lies: ``COLBERT_PLUGINS_TRAINED_MODEL``, else the checkout's
``../shared/models/colbert-minilm-trained`` (CI has ``../shared`` beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

TRAINED_MODEL = Path(
    os.environ.get("COLBERT_PLUGINS_TRAINED_MODEL")
    or Path(__file__).resolve().parents[2] / "shared" / "models" / "colbert-minilm-trained"
)
TRAINED_SKIP_REASON = (
    f"the trained model is absent ({TRAINED_MODEL}): put ../shared beside the checkout or set "
    "COLBERT_PLUGINS_TRAINED_MODEL"
)
