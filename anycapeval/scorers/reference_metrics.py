"""Reference metrics for captioning benchmarks with several human references per clip (AudioCaps, Clotho).

No judge. Every metric is computed once over the whole task (`anycapeval.refmetrics`): BLEU-1..4 from
pooled n-gram counts, METEOR from the jar's pooled statistics, ROUGE-L, CIDEr with the IDF of the whole
reference corpus (scored one clip at a time, as the official AnyCap audio script does, CIDEr is always
0), MiniLM mean cosine similarity, and SPICE / SPIDEr = (CIDEr + SPICE) / 2 only when the SPICE
CoreNLP models are installed; otherwise they are listed under `unavailable`.

Confidence intervals: the same seeded resamples of the clips (`options.bootstrap_resamples`, default
200) for every metric. BLEU and METEOR are recomputed on each resample from per-clip statistics (BLEU's
n-gram counts and closest reference length, METEOR's alignment statistics); the other metrics are means
of per-clip scores, so their replicate is the resampled mean, with CIDEr's IDF (and SPICE's parses)
fixed at the full corpus. A clip without a caption is a generation_error and is left out of the corpus.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import refmetrics
from ..stats import SEED, ci
from ..types import OK, AnyCapError, Item, Judgment, Prediction, Score
from .aggregate import counts
from .base import ScorerBase

DEFAULT_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider", "minilm", "spice", "spider")
DEFAULT_RESAMPLES = 200
BLEU_TINY, BLEU_SMALL = 1e-15, 1e-9  # pycocoevalcap's guards against a zero count, so values match it exactly

# -- corpus statistics and their resamples ------------------------------------------------------------


def bleu_from_stats(stats: np.ndarray) -> np.ndarray:
    """(..., 10) summed [testlen, reflen, guess1..4, correct1..4] -> (..., 4) corpus BLEU-1..4."""
    testlen, reflen = stats[..., 0], stats[..., 1]
    guess, correct = stats[..., 2:6], stats[..., 6:10]
    logs = np.log((correct + BLEU_TINY) / (guess + BLEU_SMALL))
    bleu = np.exp(np.cumsum(logs, axis=-1) / np.arange(1, 5))
    ratio = (testlen + BLEU_TINY) / (reflen + BLEU_SMALL)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.minimum(ratio, 1)), 1.0)
    return bleu * penalty[..., None]


def bleu_stats(gts: dict[int, list[str]], res: dict[int, list[str]]) -> np.ndarray:
    """Per clip: hypothesis length, closest reference length, n-gram guesses and matches (as pycocoevalcap)."""
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer

    scorer = BleuScorer(n=4)
    for i in sorted(gts):
        scorer += (res[i][0], gts[i])
    rows = []
    for comps in scorer.ctest:
        closest = min((abs(length - comps["testlen"]), length) for length in comps["reflen"])[1]
        rows.append([comps["testlen"], closest, *comps["guess"], *comps["correct"]])
    return np.array(rows, dtype=float)


def meteor_resamples(gts: dict[int, list[str]], res: dict[int, list[str]],
                     picks: np.ndarray) -> tuple[float, np.ndarray]:
    """Corpus METEOR, and METEOR of each resample (rows of clip indices), from the jar's per-clip
    statistics: one Java process, one statistics pass, one EVAL line per resample."""
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = Meteor()
    process = meteor.meteor_p
    try:
        stats = [meteor._stat(res[i][0], gts[i]) for i in sorted(gts)]

        def evaluate(rows: list[str]) -> float:
            process.stdin.write(("EVAL ||| " + " ||| ".join(rows) + "\n").encode())
            process.stdin.flush()
            for _ in rows:  # the per-clip scores come first; the corpus score is the last line
                process.stdout.readline()
            return float(process.stdout.readline().strip())

        value = evaluate(stats)
        replicates = np.array([evaluate([stats[j] for j in row]) for row in picks])
    finally:
        process.kill()
        process.wait()
    return value, replicates


def corpus_metrics(metrics: list[str], candidates: list[str], references: list[list[str]],
                   n_resamples: int = DEFAULT_RESAMPLES, seed: int = SEED) -> dict[str, dict[str, Any]]:
    """{metric: {"value", "ci"}} over the whole corpus, CIs from `n_resamples` resamples of the clips."""
    n = len(candidates)
    if n == 0:
        return {m: {"value": None, "ci": [None, None]} for m in metrics}
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, (n_resamples, n))
    weights = np.stack([np.bincount(row, minlength=n) for row in picks]).astype(float)  # resample -> clip counts
    plain = [m for m in metrics if m != "meteor"]
    # tokenised once (a Java process), for every n-gram metric below
    ngram = any(m != "minilm" for m in metrics)
    tokenized = refmetrics.tokenize(candidates, references) if ngram else None
    gts, res = tokenized or ({}, {})
    computed = refmetrics.compute(plain, candidates, references, tokenized) if plain else {}
    out: dict[str, dict[str, Any]] = {}
    if any(m.startswith("bleu") for m in metrics):
        reps = bleu_from_stats(weights @ bleu_stats(gts, res))
        for k in range(4):
            name = f"bleu{k + 1}"
            if name in metrics:
                out[name] = {"value": computed[name].corpus, "ci": ci(reps[:, k])}
    if "meteor" in metrics:
        value, reps_m = meteor_resamples(gts, res, picks)
        out["meteor"] = {"value": value, "ci": ci(reps_m)}
    for name in plain:
        if name not in out:  # a mean of per-clip scores: the replicate is the resampled mean
            per = np.array(computed[name].per_item, dtype=float)
            out[name] = {"value": computed[name].corpus, "ci": ci(weights @ per / n)}
    return {m: out[m] for m in metrics}


# -- the scorer ---------------------------------------------------------------------------------------


class ReferenceMetricsScorer(ScorerBase):
    name = "reference_metrics"

    def skip_reason(self, item: Item, prediction: Prediction) -> str:
        return ""  # anycap_v1's "None" rule belongs to the AnyCapEval scripts

    def score(self, item: Item, prediction: Prediction, judgments: list[Judgment]) -> Score:
        failed = self.unscored(item, prediction, judgments)
        if failed:
            return failed
        # the row carries what the corpus metrics need, so a summary can be recomputed from scores.jsonl
        return Score(item.task, item.id, item.dimension, OK,
                     metrics={"caption": prediction.caption, "references": list(item.references)})

    def wanted(self) -> tuple[list[str], dict[str, str]]:
        """(metrics to compute, {metric: why it is not available})."""
        requested = [str(m) for m in self.options.get("metrics", DEFAULT_METRICS)]
        unknown = [m for m in requested if m not in refmetrics.METRICS]
        if unknown:
            raise AnyCapError(f"reference_metrics: unknown metric(s) {unknown}; known: {', '.join(refmetrics.METRICS)}")
        unavailable = {}
        if not refmetrics.spice_available():
            why = ("needs the Stanford CoreNLP models of pycocoevalcap's SPICE (a download this tool does not make); "
                   "install them and set ANYCAPEVAL_SPICE=1")
            unavailable = {m: why for m in requested if m in refmetrics.OPTIONAL_METRICS}
        return [m for m in requested if m not in unavailable], unavailable

    def aggregate(self, scores: list[Score], dims_order: list[str]) -> dict[str, Any]:
        metrics, unavailable = self.wanted()
        ok = [s for s in scores if s.status == OK]
        resamples = int(self.options.get("bootstrap_resamples", DEFAULT_RESAMPLES))
        values = corpus_metrics(metrics, [s.metrics["caption"] for s in ok], [s.metrics["references"] for s in ok],
                                resamples)
        average: dict[str, Any] = {**values, **counts(scores), "unavailable": unavailable,
                                   "bootstrap_resamples": resamples}
        dimension = dims_order[0] if dims_order else "all"
        main = "spider" if "spider" in values else "cider" if "cider" in values else next(iter(values), "")
        return {"dimensions": {dimension: {**values, **counts(scores)}}, "average": average, "main_metric": main}
