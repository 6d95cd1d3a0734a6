"""Offline judge quality: agreement with humans, self-consistency and speed, against fixed targets.

Everything runs on the shared data (`../shared/data`), with the offline judge as it is in
`anycapeval/judges/offline.py`.

Caption quality, leave one data set out (`anycapeval.studies.heldout`): over THumB, FENSE AudioCaps-Eval
and FENSE fluency, the quality score's form and constants are chosen on two sets and reported on the
third, beside plain MiniLM, METEOR and CIDEr. Targets (issue #15): the judge at or above plain MiniLM on
every held-out set; AnyCapEval key-point recall >= 0.95 on an item's own reference and <= 0.10 on another
item's reference of the same dimension, per modality (judge-check's pairing); throughput >= 200 judged
items/s (the 1,133 AnyCapEval reference items, content + style, cold caches, model loaded), median of 3,
with the load average before each round. Also: the fluency rules against FENSE's 723 labelled captions.

    python benchmarks/offline_judge_quality.py --json-out benchmarks/results/offline_judge_quality.json
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from anycapeval.data import load_items
from anycapeval.judges.offline import OfflineJudge
from anycapeval.judges.offline_text import fluency_errors
from anycapeval.prompts import load_template
from anycapeval.registry import resolve_tasks
from anycapeval.scorers import get_scorer
from anycapeval.studies.correlate import study_pairs
from anycapeval.studies.human import read_fense, read_thumb
from anycapeval.studies.judge_check import other_items
from anycapeval.studies.stats import kendall_tau_c
from anycapeval.task_config import prompt_path
from anycapeval.types import Item, JudgeRequest, Prediction

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
TARGETS = {"own_recall": 0.95, "other_recall": 0.10, "items_per_s": 200.0}
# A reference that declines the task instead of describing the media (3 audio references); the targets are
# checked with them, and own recall is also reported without them.
REFUSAL_RE = re.compile(r"^\s*(?:(?:I'?m )?sorry,? (?:but )?)?(?:I'?m|I am) (?:unable|not able)"
                        r"|^\s*I (?:cannot|can't) ", re.I)


def held_out() -> dict[str, Any]:
    """Leave-one-dataset-out choice of the quality score, with METEOR and CIDEr on each held-out set."""
    from anycapeval.refmetrics import compute
    from anycapeval.studies.heldout import fluency_pairs, human_sets, leave_one_out

    sets = human_sets(DATA, OfflineJudge())
    result = leave_one_out(sets)
    result["chosen"] = result["chosen_label"]
    thumb = read_thumb(DATA / "human" / "thumb_coco.jsonl")
    pairs = read_fense(DATA / "human" / "fense_audiocaps_eval.json")
    for metric in ("meteor", "cider"):
        values = compute([metric], [r.candidate for r in thumb], [list(r.references) for r in thumb])[metric].per_item
        human = np.array([r.human for r in thumb])
        result["folds"]["THumB"][metric] = 100 * float(kendall_tau_c(np.array(values), human)[0])
        result["folds"]["FENSE AudioCaps-Eval"][metric] = study_pairs(pairs, [metric], None)[metric][
            "pairwise_accuracy"]["total"]
    human = DATA / "human"
    units, plan = fluency_pairs(human / "fense_audiocaps_eval.json", human / "fense_fluency_annotations_723.csv")
    for metric in ("meteor", "cider"):  # each caption against its clip's five references
        v = np.asarray(compute([metric], [u[0] for u in units], [list(u[1]) for u in units])[metric].per_item, float)
        result["folds"]["FENSE fluency"][metric] = float(100 * (v[plan[:, 0]] > v[plan[:, 1]]).mean())
    return result


Pairs = list[tuple[Item, JudgeRequest]]


def anycapeval_requests() -> tuple[Pairs, Pairs, list[JudgeRequest]]:
    """Content requests of every reference on its own key points, the same key points on the partner
    item's reference, and the style requests of every style reference."""
    own, other, style = [], [], []
    data_dir = DATA / "anycapeval"
    for task in resolve_tasks("anycapeval"):
        cfg = task.config
        scorer = get_scorer(cfg.scorer, "default", cfg.modality)
        role = scorer.roles[0]
        template = load_template(role, prompt_path(task, role))
        items = load_items(task, data_dir)
        if role == "style":
            style += [scorer.request(i, Prediction(task.name, i.id, "reference", i.reference), template) for i in items]
            continue
        items = [i for i in items if i.key_points]
        partner = other_items(items)
        for i in items:
            own.append((i, scorer.request(i, Prediction(task.name, i.id, "reference", i.reference), template)))
            o = partner[i.id]
            other.append((i, scorer.request(i, Prediction(task.name, i.id, "reference", o.reference), template)))
    return own, other, style


def judge(requests: list[JudgeRequest], judge: OfflineJudge) -> list[Any]:
    out = []
    for start in range(0, len(requests), judge.batch_size):
        out += asyncio.run(judge.judge_batch(requests[start:start + judge.batch_size]))
    return out


def self_consistency() -> dict[str, Any]:
    own, other, _ = anycapeval_requests()
    j = OfflineJudge()
    own_j, other_j = judge([r for _, r in own], j), judge([r for _, r in other], j)
    out: dict[str, Any] = {}
    for name, keep in (("A", 0), ("B", 1), ("all", None)):
        entry = {}
        for label, pairs, judged in (("own_recall", own, own_j), ("other_recall", other, other_j)):
            hits = [(sum(jd.value), len(i.key_points)) for (i, _), jd in zip(pairs, judged)
                    if keep is None or int(i.id) % 2 == keep]
            entry[label] = sum(h for h, _ in hits) / sum(n for _, n in hits)
        by_modality = {}
        for modality in ("image", "video", "audio"):
            hits = [(sum(jd.value), len(i.key_points)) for (i, _), jd in zip(own, own_j)
                    if i.modality == modality and (keep is None or int(i.id) % 2 == keep)]
            miss = [(sum(jd.value), len(i.key_points)) for (i, _), jd in zip(other, other_j)
                    if i.modality == modality and (keep is None or int(i.id) % 2 == keep)]
            kept = [(sum(jd.value), len(i.key_points)) for (i, _), jd in zip(own, own_j)
                    if i.modality == modality and (keep is None or int(i.id) % 2 == keep)
                    and not REFUSAL_RE.match(i.reference)]
            by_modality[modality] = {"own": sum(h for h, _ in hits) / sum(n for _, n in hits),
                                     "other": sum(h for h, _ in miss) / sum(n for _, n in miss),
                                     "own_without_refusals": sum(h for h, _ in kept) / sum(n for _, n in kept),
                                     "refusal_key_points": sum(n for _, n in hits) - sum(n for _, n in kept)}
        entry["by_modality"] = by_modality
        entry["key_points"] = sum(len(i.key_points) for i, _ in own if keep is None or int(i.id) % 2 == keep)
        out[name] = entry
    return out


def throughput(rounds: int) -> dict[str, Any]:
    own, _, style = anycapeval_requests()
    requests = [r for _, r in own] + style
    from anycapeval.encoder import load_minilm

    load_minilm()
    times, loads = [], []
    for _ in range(rounds):
        loads.append(os.getloadavg())
        j = OfflineJudge()  # cold caches every round
        j.encoder.encode(["warm up the threads"])
        start = time.perf_counter()
        judged = judge(requests, j)
        times.append(time.perf_counter() - start)
        assert all(x.status == "ok" for x in judged)
    best, median = min(times), float(np.median(times))
    return {"items": len(requests), "seconds": times, "items_per_s_median": len(requests) / median,
            "items_per_s_best": len(requests) / best, "precision": OfflineJudge().encoder.precision,
            "load_average_before_each_round": loads}


def fluency() -> dict[str, Any]:
    rows = list(csv.DictReader((DATA / "human" / "fense_fluency_annotations_723.csv").open()))
    y = np.array([int(r["fluency_issue"]) for r in rows])
    flagged = np.array([bool(fluency_errors(r["caption"])) for r in rows])
    return {"n": len(rows), "labelled_errors": int(y.sum()), "flagged": int(flagged.sum()),
            "precision": float(y[flagged].mean()), "recall": float(flagged[y == 1].mean())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (median reported)")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"{DATA} not found", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                              "judge": OfflineJudge().identity}
    result["held_out"], result["self_consistency"] = held_out(), self_consistency()
    result["fluency_rules"], result["throughput"] = fluency(), throughput(args.rounds)
    folds, s = result["held_out"]["folds"], result["self_consistency"]["all"]["by_modality"]
    checks = {"judge_at_least_minilm": all(f["held_out"] >= f["plain_minilm"] for f in folds.values()),
              "own_recall": all(m["own"] >= TARGETS["own_recall"] for m in s.values()),
              "other_recall": all(m["other"] <= TARGETS["other_recall"] for m in s.values()),
              "items_per_s": result["throughput"]["items_per_s_median"] >= TARGETS["items_per_s"]}
    result["targets"], result["checks"] = TARGETS, checks
    result["wall_s"] = time.perf_counter() - t0
    print(f"{'held-out set':<22}{'judge':>8}{'MiniLM':>8}{'METEOR':>8}{'CIDEr':>8}  chosen on the other two")
    for name, f in folds.items():
        cells = "".join(f"{f[k]:>8.1f}" for k in ("held_out", "plain_minilm", "meteor", "cider"))
        print(f"{name:<22}{cells}  {f['config']}")
    print(f"shipped: {result['held_out']['chosen']}")
    for modality, m in s.items():
        print(f"key points {modality}: own {m['own']:.3f} (>= 0.95), other {m['other']:.3f} (<= 0.10); own without "
              f"the {m['refusal_key_points']} key points of refusal references {m['own_without_refusals']:.3f}")
    tp = result["throughput"]
    print(f"throughput: {tp['items_per_s_median']:.1f} items/s median ({tp['items']} items, {tp['precision']}, "
          f"load before each round {[round(x[0], 2) for x in tp['load_average_before_each_round']]})")
    fl = result["fluency_rules"]
    print(f"fluency rules on the 723 labelled captions: precision {fl['precision']:.3f}, recall {fl['recall']:.3f}")
    print("checks:", ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in checks.items()))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
