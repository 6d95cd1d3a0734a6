"""Leave-one-dataset-out choice of the offline judge's caption-quality score.

The score (`anycapeval.judges.offline.quality`) is a weighted mean of three similarities (mean and max
cosine to the references, token recall of the references) minus a weight × the references' mutual
cosine minus a penalty when one of the chosen fluency rules fires. Every (candidate, references) unit
is reduced once to those parts, so any setting of the constants is a cheap linear map and a grid of
them can be scored on every human set at once.

Human sets (all built from `shared/data/human`):
- THumB: 1,310 rated COCO captions; Kendall τ-c with `human_score` (×100, in points).
- FENSE AudioCaps-Eval: 1,483 audio-caption pairs with a preference; pairwise accuracy (%).
- FENSE fluency: the 723 captions labelled for fluency errors, paired inside each clip of
  AudioCaps-Eval (fluent vs not: 816 pairs over 174 clips, 675 of the captions, all five references); accuracy (%) =
  share of pairs whose fluent caption scores higher. The captions also occur in AudioCaps-Eval pairs,
  so this set shares captions (not judgments) with it.

Choice: with one set held out, the setting with the largest summed gain over plain MiniLM (points on
the other sets) wins; exact ties go to the simplest setting (fewest terms). The held-out set only
reports. `leave_one_out` returns, per held-out set, the chosen setting and its held-out value beside
plain MiniLM's.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..judges.offline_text import fluency_errors
from .human import read_fense, read_thumb

RULES = ("unfinished", "repeated_phrase", "repeated_word", "article", "missing_verb")


@dataclass(frozen=True)
class Config:
    weights: tuple[float, float, float]  # mean cosine, max cosine, token recall of the references
    consistency: float = 0.0  # × mean cosine among the references, subtracted
    fluency: float = 0.0  # subtracted when one of `rules` fires
    rules: tuple[str, ...] = ()

    @property
    def terms(self) -> int:
        return (sum(w > 0 for w in self.weights[1:]) + (self.consistency > 0) + (self.fluency > 0)
                + len(self.rules))

    def label(self) -> str:
        w = "/".join(f"{x:g}" for x in self.weights)
        rules = ",".join(self.rules) or "-"
        return f"w={w} c={self.consistency:g} f={self.fluency:g} rules={rules}"


PLAIN = Config((1.0, 0.0, 0.0))


@dataclass
class Units:
    parts: np.ndarray  # (n, 4): mean cosine, max cosine, token recall, reference consistency
    flags: np.ndarray  # (n, len(RULES)) bool


def features(judge: Any, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> Units:
    from ..judges.offline import token_recall
    from ..judges.offline_encoder import torch_threads

    vectors = judge.encoder.encode([*candidates, *(r for refs in references for r in refs)])
    parts = []
    with torch_threads(1):
        for c, refs in zip(candidates, references):
            cand, rs = vectors[c], [vectors[r] for r in refs]
            matrix = np.stack([r.sentence for r in rs])
            cos, n = matrix @ cand.sentence, len(rs)
            consistency = float(((matrix @ matrix.T).sum() - n) / (n * n - n)) if n > 1 else 0.0
            parts.append([cos.mean(), cos.max(), np.mean([token_recall(cand, r) for r in rs]), consistency])
    flags = np.array([[rule in fluency_errors(c) for rule in RULES] for c in candidates], bool).reshape(-1, len(RULES))
    return Units(np.array(parts, float), flags)


def scores(units: Units, configs: Sequence[Config]) -> np.ndarray:
    """(n units, n configs) quality values."""
    w = np.array([c.weights for c in configs]).T
    sim = units.parts[:, :3] @ (w / w.sum(0))
    cons = units.parts[:, 3:4] * np.array([c.consistency for c in configs])
    masks = np.array([[r in c.rules for r in RULES] for c in configs], bool).T
    fired = (units.flags.astype(float) @ masks.astype(float)) > 0
    return sim - cons - fired * np.array([c.fluency for c in configs])


@dataclass
class HumanSet:
    name: str
    measure: str  # what `evaluate` returns, in points
    units: Units
    human: np.ndarray | None = None  # rated: human score per unit
    pairs: np.ndarray | None = None  # paired: (m, 2) unit indices, the first preferred by people

    def evaluate(self, values: np.ndarray) -> np.ndarray:
        """Points per config column of `values` (n units, C)."""
        if self.pairs is not None:
            diff = values[self.pairs[:, 0]] - values[self.pairs[:, 1]]
            return 100 * (diff > 0).mean(0)  # a metric tie counts as wrong
        return 100 * tau_c(values, np.asarray(self.human))


def tau_c(values: np.ndarray, human: np.ndarray, block: int = 64) -> np.ndarray:
    """Stuart's Kendall τ-c of each column of `values` (n, C) with `human` (n,)."""
    n = len(human)
    i, j = np.triu_indices(n, 1)
    h = np.sign(human[i] - human[j])
    keep = h != 0
    i, j, h = i[keep], j[keep], h[keep]
    out = np.empty(values.shape[1])
    for s in range(0, values.shape[1], block):
        v = values[:, s:s + block].astype(np.float32)
        out[s:s + block] = h @ np.sign(v[i] - v[j])
    distinct = np.array([len(np.unique(values[:, c])) for c in range(values.shape[1])])
    m = np.minimum(distinct, len(np.unique(human))).astype(float)
    return 2 * out / (n * n * (m - 1) / m)


def thumb_set(path: Path, judge: Any) -> HumanSet:
    rows = read_thumb(path)
    units = features(judge, [r.candidate for r in rows], [r.references for r in rows])
    return HumanSet("THumB", "Kendall τ-c × 100", units, human=np.array([r.human for r in rows]))


def fense_set(path: Path, judge: Any) -> HumanSet:
    pairs = [p for p in read_fense(path) if p.vote_sum != 0]
    index: dict[tuple[str, tuple[str, ...]], int] = {}
    plan = []
    for p in pairs:
        a = index.setdefault((p.caption_1, p.refs_1), len(index))
        b = index.setdefault((p.caption_2, p.refs_2), len(index))
        plan.append((a, b) if p.vote_sum > 0 else (b, a))
    keys = list(index)
    units = features(judge, [k[0] for k in keys], [k[1] for k in keys])
    return HumanSet("FENSE AudioCaps-Eval", "pairwise accuracy %", units, pairs=np.array(plan))


def fluency_pairs(eval_path: Path, labels_path: Path) -> tuple[list[tuple[str, tuple[str, ...]]], np.ndarray]:
    """(caption, references) units and (fluent, not fluent) unit-index pairs inside each clip."""
    labels = {r["caption"]: int(r["fluency_issue"]) for r in csv.DictReader(labels_path.open())}
    index: dict[tuple[str, tuple[str, ...]], int] = {}
    plan = []
    for clip in json.loads(eval_path.read_text()):
        refs = tuple(clip["references"])
        seen = {c for k, v in clip.items() if k != "references" and isinstance(v, list)
                for c in v[:2] if isinstance(c, str) and c in labels}
        good = sorted(c for c in seen if labels[c] == 0)
        bad = sorted(c for c in seen if labels[c] == 1)
        for g, b in itertools.product(good, bad):
            plan.append((index.setdefault((g, refs), len(index)), index.setdefault((b, refs), len(index))))
    return list(index), np.array(plan)


def fluency_set(eval_path: Path, labels_path: Path, judge: Any) -> HumanSet:
    keys, plan = fluency_pairs(eval_path, labels_path)
    units = features(judge, [k[0] for k in keys], [k[1] for k in keys])
    return HumanSet("FENSE fluency", "pairwise accuracy %", units, pairs=plan)


def human_sets(data_dir: Path, judge: Any) -> list[HumanSet]:
    human = data_dir / "human"
    return [thumb_set(human / "thumb_coco.jsonl", judge), fense_set(human / "fense_audiocaps_eval.json", judge),
            fluency_set(human / "fense_audiocaps_eval.json", human / "fense_fluency_annotations_723.csv", judge)]


def grid() -> list[Config]:
    weights = sorted({tuple(float(x) / max(w) for x in w) for w in itertools.product((0, 1, 2, 3), repeat=3) if any(w)})
    rule_sets = [tuple(r for r, on in zip(RULES, bits) if on) for bits in itertools.product((0, 1), repeat=len(RULES))]
    out = []
    for w, c in itertools.product(weights, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)):
        out.append(Config(w, c))  # type: ignore[arg-type]
        out += [Config(w, c, f, rules) for f in (0.1, 0.2, 0.3, 0.4, 0.5) for rules in rule_sets if rules]  # type: ignore[arg-type]
    return out


def evaluate_all(sets: Sequence[HumanSet], configs: Sequence[Config]) -> np.ndarray:
    """(n sets, n configs) points; configs equal on a set (same flags fired) are computed once."""
    out = np.empty((len(sets), len(configs)))
    for k, s in enumerate(sets):
        keys: dict[tuple[Any, ...], int] = {}
        which = []
        for c in configs:
            fired = (s.units.flags[:, [RULES.index(r) for r in c.rules]].any(1) if c.rules
                     else np.zeros(len(s.units.flags), bool))
            key = (c.weights, c.consistency, c.fluency if fired.any() else 0.0, fired.tobytes() if fired.any() else b"")
            which.append(keys.setdefault(key, len(keys)))
        first = {v: i for i, v in reversed(list(enumerate(which)))}
        distinct = [configs[first[v]] for v in range(len(keys))]
        out[k] = s.evaluate(scores(s.units, distinct))[np.array(which)]
    return out


def choose(points: np.ndarray, plain: np.ndarray, configs: Sequence[Config], train: Sequence[int]) -> int:
    """The config with the largest summed gain over plain MiniLM on the `train` sets (ties: fewest terms)."""
    gain = (points[list(train)] - plain[list(train), None]).sum(0)
    best = gain.max()
    tied = [int(i) for i in np.flatnonzero(np.isclose(gain, best, rtol=0, atol=1e-9))]
    return min(tied, key=lambda i: (configs[i].terms, configs[i].consistency, configs[i].fluency, i))


def without_each_term(config: Config) -> dict[str, Config]:
    """The config with one of its terms removed, by term name."""
    out = {}
    for i, name in ((1, "max cosine"), (2, "token recall")):
        if config.weights[i] > 0 and sum(w > 0 for w in config.weights) > 1:
            weights = tuple(0.0 if k == i else w for k, w in enumerate(config.weights))
            out[name] = replace(config, weights=weights)  # type: ignore[arg-type]
    if config.weights[0] > 0 and sum(w > 0 for w in config.weights) > 1:
        out["mean cosine"] = replace(config, weights=(0.0, *config.weights[1:]))
    if config.consistency:
        out["consistency"] = replace(config, consistency=0.0)
    if config.fluency:
        out["fluency penalty"] = replace(config, fluency=0.0, rules=())
    for rule in config.rules:
        out[f"rule {rule}"] = replace(config, rules=tuple(r for r in config.rules if r != rule))
    return out  # type: ignore[return-value]


def leave_one_out(sets: Sequence[HumanSet], configs: Sequence[Config] | None = None) -> dict[str, Any]:
    configs = list(configs or grid())
    points = evaluate_all(sets, configs)
    plain = evaluate_all(sets, [PLAIN])[:, 0]
    folds: dict[str, dict[str, Any]] = {}
    for k, s in enumerate(sets):
        pick = choose(points, plain, configs, [t for t in range(len(sets)) if t != k])
        ablated = without_each_term(configs[pick])
        held = evaluate_all([s], list(ablated.values()))[0] if ablated else []
        folds[s.name] = {"measure": s.measure, "config": configs[pick].label(), "held_out": float(points[k, pick]),
                         "plain_minilm": float(plain[k]),
                         "train": {sets[t].name: float(points[t, pick]) for t in range(len(sets)) if t != k},
                         "held_out_without": dict(zip(ablated, map(float, held)))}
    effect: dict[str, float] = {}
    for fold in folds.values():
        for term, value in fold["held_out_without"].items():
            effect[term] = effect.get(term, 0.0) + fold["held_out"] - value
    kept = {t for t, e in effect.items() if e > 0}  # terms that, summed over the folds, helped held out
    family = [i for i, c in enumerate(configs) if set(term_names(c)) <= kept]
    pick = family[choose(points[:, family], plain, [configs[i] for i in family], range(len(sets)))]
    return {"n_configs": len(configs), "folds": folds, "held_out_gain_by_term": effect, "kept_terms": sorted(kept),
            "chosen": configs[pick], "chosen_label": configs[pick].label(),
            "chosen_on_all": {s.name: float(points[k, pick]) for k, s in enumerate(sets)},
            "plain_on_all": {s.name: float(plain[k]) for k, s in enumerate(sets)}}


def term_names(config: Config) -> list[str]:
    names = [n for n, w in zip(("mean cosine", "max cosine", "token recall"), config.weights) if w > 0]
    if len(names) == 1:
        names = []  # a single similarity is the base, not a term
    return (names + ["consistency"] * (config.consistency > 0) + ["fluency penalty"] * (config.fluency > 0)
            + [f"rule {r}" for r in config.rules])
