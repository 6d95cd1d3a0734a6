"""Metric name → per-sample scores of (candidate, references) pairs, for the correlation studies.

- `bleu1`..`bleu4`, `meteor`, `rouge_l`, `cider`: `anycapeval.refmetrics` (corpus-level IDF for CIDEr,
  so all pairs of a study are scored in one call).
- `minilm`: refmetrics' mean MiniLM cosine to the references, computed from the offline judge's
  encodings (each distinct text encoded once and shared with `offline_judge`; the tests check it
  equals `refmetrics.compute(["minilm"], ...)`).
- `offline_judge`: the offline judge's reference-based caption quality (`OfflineJudge.quality_scores`).
- `judge`: any configured judge (`--judge`), asked the style question of the project's style prompt
  with the references as the reference text (`brief` style); its 0–4 grade is the score. Judgments
  go through the SQLite cache; a failed judgment is no score (the pair or row is left out and counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..types import OK, AnyCapError, Item, Prediction

NGRAM = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider")
OFFLINE = (*NGRAM, "minilm", "offline_judge")
METRICS = (*OFFLINE, "judge")
DEFAULT_METRICS = ("bleu4", "meteor", "rouge_l", "cider", "minilm", "offline_judge")


@dataclass
class JudgeConfig:
    spec: str
    base_url: str | None = None
    key_file: str | None = None
    concurrency: int = 16
    cache_path: Path | None = None
    prompt: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def offline_judge() -> Any:
    """One offline judge per process, so `minilm` and `offline_judge` share every encoding."""
    from ..judges.offline import OfflineJudge

    return OfflineJudge()


def parse_metrics(spec: str) -> list[str]:
    names = [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise AnyCapError(f"--metric: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def score(metric: str, candidates: Sequence[str], references: Sequence[Sequence[str]],
          judge: JudgeConfig | None = None) -> tuple[list[float], int]:
    """(per-pair scores, number of failed judgments). A failed judgment's score is NaN."""
    if metric in NGRAM:
        from ..refmetrics import compute

        result = compute([metric], list(candidates), [list(r) for r in references])[metric]
        return [float(v) for v in result.per_item], 0
    if metric == "minilm":
        return offline_judge().mean_cosines(candidates, references), 0
    if metric == "offline_judge":
        return [q["quality"] for q in offline_judge().quality_scores(candidates, references)], 0
    if metric == "judge":
        if judge is None:
            raise AnyCapError("metric 'judge' needs --judge SPEC (e.g. openai:gpt-4o-2024-08-06 with --judge-base-url)")
        return _judge_scores(judge, candidates, references)
    raise AnyCapError(f"unknown metric '{metric}'; known: {', '.join(METRICS)}")


def format_references(references: Sequence[str]) -> str:
    if len(references) == 1:
        return references[0]
    return "\n".join(f"Reference {i}: {r}" for i, r in enumerate(references, 1))


def _judge_scores(config: JudgeConfig, candidates: Sequence[str],
                  references: Sequence[Sequence[str]]) -> tuple[list[float], int]:
    from ..judges import make_judge
    from ..judges.roles import STYLE
    from ..prompts import load_template
    from ..scorers import get_scorer
    from ..store import Cache, default_cache_path
    from ..task_config import tasks_dir
    from .judging import judge_requests

    judge = make_judge(config.spec, base_url=config.base_url, key_file=config.key_file,
                       concurrency=config.concurrency, **config.options)
    template = load_template("style", config.prompt or tasks_dir() / "prompts" / "anycapeval_style.txt",
                             STYLE.placeholders)
    scorer = get_scorer("style_rubric")
    requests = []
    for i, (candidate, refs) in enumerate(zip(candidates, references)):
        item = Item(task="correlate", id=str(i), modality="", instruction="Describe it briefly.",
                    reference=format_references(refs), instruction_type="brief", dimension="Brf",
                    length_constraint="")
        requests.append(scorer.request(item, Prediction("correlate", str(i), "study", candidate), template))
    cache = Cache(config.cache_path or default_cache_path())
    try:
        judgments = judge_requests(judge, requests, cache=cache, concurrency=config.concurrency,
                                   label=f"judge {config.spec}")
    finally:
        cache.close()
    scores = [float(j.value) if j.status == OK else float("nan") for j in judgments]
    return scores, sum(j.status != OK for j in judgments)
