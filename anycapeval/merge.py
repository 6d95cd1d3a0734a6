"""Joining shard runs (`--shard K/N`) into the run an unsharded invocation would have written.

Shards hold contiguous blocks of each task's items, so concatenating their rows in shard order
restores the unsharded item order, and the task's scorer re-aggregates `scores.jsonl` with the same
seeded bootstrap: `summary.json` comes out equal to the unsharded run's. Shards from different
systems, tasks, judges, prompts or versions, and missing or duplicate shards, are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .cost import actual_cost
from .files import read_jsonl, read_run_file
from .registry import resolve_tasks
from .rowsink import served_models
from .scorers import get_scorer
from .store import write_json_atomic, write_jsonl_atomic
from .types import JUDGE_ERROR, OK, AnyCapError, InputError, Score

# manifest fields every shard must share (values compared as JSON)
SAME = ("system", "base", "model_args", "base_args", "protocol", "tasks", "judges", "judge_media", "seeds",
        "anycapeval_version", "system_settings")
SAME_ARGUMENTS = ("model", "tasks", "judge", "judge_base_url", "limit", "judge_prompts", "max_judge_error_rate")
SCORE_FIELDS = ("task", "item_id", "dimension", "status", "metrics", "error")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise AnyCapError(f"{path}: not found; is this a finished run directory?")
    return [record for _, record in read_jsonl(path)]


class Shard:
    def __init__(self, path: Path):
        self.path = path
        self.manifest = read_run_file(path / "manifest.json")
        if self.manifest.get("status") != "complete":
            raise InputError(str(path / "manifest.json"), "status", f"{self.manifest.get('status')!r}: the shard did "
                             "not finish; re-run its command to complete it")
        info = self.manifest.get("shard")
        if not isinstance(info, dict):
            raise InputError(str(path / "manifest.json"), "shard", "missing: this run was not made with --shard K/N")
        self.index, self.count, self.blocks = int(info["index"]), int(info["count"]), info["blocks"]
        self.summary = read_run_file(path / "summary.json")
        self.rows = {name: _read_jsonl(path / f"{name}.jsonl") for name in ("predictions", "judgments", "scores")}

    def key(self) -> dict[str, Any]:
        args = self.manifest.get("arguments", {})
        prompts = {name: (t.get("prompt_hash"), t.get("judge"), t.get("task_version"))
                   for name, t in self.summary["tasks"].items()}
        return {**{k: self.manifest.get(k) for k in SAME}, "arguments": {k: args.get(k) for k in SAME_ARGUMENTS},
                "shard_count": self.count, "prompts": prompts,
                "totals": {name: b["total"] for name, b in self.blocks.items()}}


def _same(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _check(shards: list[Shard]) -> list[Shard]:
    first = shards[0]
    reference = first.key()
    for shard in shards[1:]:
        key = shard.key()
        differ = [k for k in reference if _same(reference[k]) != _same(key[k])]
        if differ:
            raise AnyCapError(f"{shard.path} and {first.path} are not shards of the same run: they differ in "
                              f"{', '.join(differ)}")
    by_index: dict[int, Shard] = {}
    for shard in shards:
        if shard.index in by_index:
            raise AnyCapError(f"shard {shard.index}/{shard.count} given twice: {by_index[shard.index].path} and "
                              f"{shard.path}")
        by_index[shard.index] = shard
    missing = [k for k in range(1, first.count + 1) if k not in by_index]
    if missing:
        raise AnyCapError(f"missing shard(s) {', '.join(f'{k}/{first.count}' for k in missing)}; merge needs all "
                          f"{first.count}")
    ordered = [by_index[k] for k in range(1, first.count + 1)]
    for name, block in first.blocks.items():
        position = 0
        for shard in ordered:
            b = shard.blocks[name]
            if b["start"] != position:
                raise AnyCapError(f"{shard.path}: task {name} items {b['start']}..{b['stop']} do not follow the "
                                  f"previous shard's (which ended at {position})")
            position = b["stop"]
        if position != block["total"]:
            raise AnyCapError(f"task {name}: the shards cover {position} of {block['total']} items")
    return ordered


def merge_runs(run_dirs: list[Path], output: Path) -> dict[str, Any]:
    """Write the merged run to `output` and return its summary."""
    if not run_dirs:
        raise AnyCapError("merge needs the shard run directories")
    shards = _check([Shard(Path(p)) for p in run_dirs])
    first = shards[0]
    task_names = list(first.summary["tasks"])
    tasks = {t.name: t for t in resolve_tasks(",".join(task_names))}
    for name in task_names:
        recorded = first.manifest["tasks"][name]["file_hash"]
        if tasks[name].file_hash != recorded:
            raise AnyCapError(f"task {name}: its task file changed since the shards ran ({recorded} -> "
                              f"{tasks[name].file_hash}); merge with the anycapeval that ran them")

    def rows(kind: str) -> list[dict[str, Any]]:  # task-major, then shard order: the unsharded order
        return [r for name in task_names for s in shards for r in s.rows[kind] if r["task"] == name]

    score_rows = rows("scores")
    order = {name: n for n, name in enumerate(task_names)}  # judge rounds run task by task, round by round
    judgment_rows = sorted(rows("judgments"), key=lambda r: (order[r["task"]], r.get("round", 0)))
    protocol = first.manifest["protocol"]
    predictions = rows("predictions")
    merged_tasks: dict[str, Any] = {}
    for name in task_names:
        cfg = tasks[name].config
        scorer = get_scorer(cfg.scorer, protocol, cfg.modality, cfg.options)
        scores = [Score(**{k: r[k] for k in SCORE_FIELDS}) for r in score_rows if r["task"] == name]
        entry = {**first.summary["tasks"][name], **scorer.aggregate(scores, list(cfg.dimensions.values()))}
        for counted in ("judge_media_seen", "served_judge"):  # counts per kind: the shards' sums
            if counted in entry:
                seen: dict[str, int] = {}
                for shard in shards:
                    for kind, n in shard.summary["tasks"][name].get(counted, {}).items():
                        seen[kind] = seen.get(kind, 0) + n
                entry[counted] = seen
        if "cost" in entry:  # priced again from all the shards' rows
            entry["cost"] = actual_cost([r for r in predictions if r["task"] == name],
                                        [r for r in judgment_rows if r["task"] == name])
        merged_tasks[name] = entry
    failed = sum(r["status"] == JUDGE_ERROR for r in judgment_rows)
    errors = {**first.summary.get("judge_errors", {}), "n": failed, "of": len(judgment_rows),
              "rate": failed / len(judgment_rows) if judgment_rows else 0.0}
    gen_failed = sum(r["status"] != OK for r in predictions)
    gen_errors = {**first.summary.get("generation_errors", {}), "n": gen_failed, "of": len(predictions),
                  "rate": gen_failed / len(predictions) if predictions else 0.0}
    summary = {k: v for k, v in first.summary.items() if k != "shard"}  # the key order of a single run
    summary.update(tasks=merged_tasks, judge_errors=errors, generation_errors=gen_errors,
                   served_models=served_models(predictions, judgment_rows))
    if "cost" in summary:
        summary["cost"] = actual_cost(predictions, judgment_rows)

    from .report import summary_markdown

    write_jsonl_atomic(output / "predictions.jsonl", predictions)
    write_jsonl_atomic(output / "judgments.jsonl", judgment_rows)
    write_jsonl_atomic(output / "scores.jsonl", score_rows)
    write_json_atomic(output / "summary.json", summary)
    (output / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    manifest = {k: v for k, v in first.manifest.items() if k != "shard"}
    manifest["merged_from"] = [{"run_dir": str(s.path), "shard": f"{s.index}/{s.count}",
                                "finished_at": s.manifest.get("finished_at")} for s in shards]
    manifest["arguments"] = {**manifest.get("arguments", {}), "shard": None}
    write_json_atomic(output / "manifest.json", manifest)
    return summary
