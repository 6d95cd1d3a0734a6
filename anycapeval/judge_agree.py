"""`anycapeval judge-agree RUN_A RUN_B [RUN...]`: do two judges agree on the same captions?

Runs are grouped by their judge (summary.json `judges`); exactly two judges must appear, the first
run's being judge A. Within each judge, runs are matched by system; a matched pair must hold the same
captions (predictions.jsonl), so the judges saw the same thing. Reported:

- key points (content role): raw agreement and Cohen's κ over every key-point decision both judged;
- style grades (style role, 0–4): exact and ±1 agreement and quadratic-weighted κ;
- per task and dimension: KPD and style score under each judge and Δ = B − A with a paired bootstrap
  95 % CI over the items both scored (the leaderboard's paired test);
- with ≥ 3 systems judged by both: Kendall τ-b between the two judges' system rankings per task.

Written as judge_agree.json and judge_agree.md (and the markdown printed).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .types import OK, AnyCapError

# numpy (agreement) and the task registry (data) are imported where used: `anycapeval --help` stays fast

STYLE_GRADES = (0, 1, 2, 3, 4)
COMPARED_METRICS = ("kpd", "style_score")
MIN_SYSTEMS_FOR_TAU = 3


@dataclass
class Run:
    path: Path
    system: str
    judge: str
    summary: dict[str, Any]

    def rows(self, name: str) -> list[dict[str, Any]]:
        from .files import read_jsonl

        path = self.path / name
        if not path.is_file():
            raise AnyCapError(f"{path} not found: judge-agree needs finished run directories (anycapeval run/score "
                              "--output DIR)")
        return [row for _, row in read_jsonl(path)]


def load(path: Path) -> Run:
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise AnyCapError(f"{summary_path} not found: pass finished run directories, each made with "
                          "`anycapeval score --predictions SAME_FILE --judge ... --output DIR`")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    judge = ", ".join(summary.get("judges") or sorted({t["judge"] for t in summary["tasks"].values()}))
    return Run(path, str(summary.get("system", "")), judge, summary)


def pair_runs(paths: list[Path]) -> tuple[str, str, list[tuple[Run, Run]]]:
    """(judge A, judge B, [(run under A, run under B) per system])."""
    runs = [load(p) for p in paths]
    judges = list(dict.fromkeys(r.judge for r in runs))
    if len(judges) != 2:
        raise AnyCapError(f"judge-agree compares two judges; these runs were judged by {len(judges)}: "
                          f"{'; '.join(judges)}. Pass runs of the same captions judged by exactly two judges.")
    by_judge: dict[str, dict[str, Run]] = {j: {} for j in judges}
    for run in runs:
        if run.system in by_judge[run.judge]:
            raise AnyCapError(f"{run.path} and {by_judge[run.judge][run.system].path}: the same system "
                              f"({run.system}) judged twice by {run.judge}; pass one of them")
        by_judge[run.judge][run.system] = run
    a, b = judges
    pairs = [(by_judge[a][s], by_judge[b][s]) for s in by_judge[a] if s in by_judge[b]]
    if not pairs:
        raise AnyCapError(f"no system was judged by both {a} and {b}: systems {sorted(by_judge[a])} vs "
                          f"{sorted(by_judge[b])}")
    for run_a, run_b in pairs:
        _check_same_captions(run_a, run_b)
    return a, b, pairs


def _check_same_captions(run_a: Run, run_b: Run) -> None:
    def captions(run: Run) -> dict[tuple[str, str], str]:
        return {(r["task"], str(r["item_id"])): r.get("caption", "") for r in run.rows("predictions.jsonl")
                if r.get("status", OK) == OK}

    ca, cb = captions(run_a), captions(run_b)
    differ = [k for k in ca.keys() & cb.keys() if ca[k] != cb[k]]
    if differ:
        task, item = sorted(differ)[0]
        raise AnyCapError(f"{run_a.path} and {run_b.path} judged different captions for {len(differ)} items (first: "
                          f"{task} item {item}); judge-agree needs the same captions under both judges: score one "
                          "predictions file with each judge")


def _judgment_pairs(pairs: list[tuple[Run, Run]]) -> dict[str, list[tuple[str, Any, Any]]]:
    """{role: [(task, value under A, value under B)]} for judgments both judges made successfully."""
    out: dict[str, list[tuple[str, Any, Any]]] = {}
    for run_a, run_b in pairs:
        def keyed(run: Run) -> dict[tuple[Any, ...], dict[str, Any]]:
            return {(r["task"], str(r["item_id"]), r["role"], r.get("round", 0)): r
                    for r in run.rows("judgments.jsonl") if r["status"] == OK}

        ja, jb = keyed(run_a), keyed(run_b)
        for key in sorted(ja.keys() & jb.keys(), key=str):
            out.setdefault(key[2], []).append((key[0], ja[key]["value"], jb[key]["value"]))
    return out


def key_point_agreement(rows: list[tuple[str, Any, Any]]) -> dict[str, Any]:
    from .agreement import cohen_kappa, raw_agreement

    def stats(subset: list[tuple[str, Any, Any]]) -> dict[str, Any]:
        a = [int(x) for _, va, vb in subset if len(va) == len(vb) for x in va]
        b = [int(x) for _, va, vb in subset if len(va) == len(vb) for x in vb]
        return {"n_key_points": len(a), "n_items": len(subset), "agreement": raw_agreement(a, b),
                "kappa": cohen_kappa(a, b), "mentioned_rate_a": sum(a) / len(a) if a else None,
                "mentioned_rate_b": sum(b) / len(b) if b else None}

    tasks = sorted({t for t, _, _ in rows})
    return {"all": stats(rows), "by_task": {t: stats([r for r in rows if r[0] == t]) for t in tasks}}


def style_agreement(rows: list[tuple[str, Any, Any]]) -> dict[str, Any]:
    from .agreement import raw_agreement, weighted_kappa, within

    def stats(subset: list[tuple[str, Any, Any]]) -> dict[str, Any]:
        a, b = [float(va) for _, va, _ in subset], [float(vb) for _, _, vb in subset]
        return {"n_items": len(a), "exact": raw_agreement(a, b), "within_1": within(a, b, 1),
                "kappa_quadratic": weighted_kappa(a, b, STYLE_GRADES, "quadratic"),
                "mean_a": sum(a) / len(a) if a else None, "mean_b": sum(b) / len(b) if b else None}

    tasks = sorted({t for t, _, _ in rows})
    return {"all": stats(rows), "by_task": {t: stats([r for r in rows if r[0] == t]) for t in tasks}}


def dimension_deltas(pairs: list[tuple[Run, Run]]) -> list[dict[str, Any]]:
    from .leaderboard.paired import paired_bootstrap, ratios_for

    out = []
    for run_a, run_b in pairs:
        scores_a, scores_b = run_a.rows("scores.jsonl"), run_b.rows("scores.jsonl")
        for task, entry_a in run_a.summary["tasks"].items():
            entry_b = run_b.summary["tasks"].get(task)
            if entry_b is None:
                continue
            ratios = {k: v for k, v in ratios_for(entry_a).items() if k in COMPARED_METRICS}
            tests = paired_bootstrap([r for r in scores_b if r["task"] == task],
                                     [r for r in scores_a if r["task"] == task], ratios)
            cells = [*entry_a["dimensions"], "Avg"]
            for dim in cells:
                for metric in ratios:
                    test = tests.get((dim, metric))
                    side = [(e["average"] if dim == "Avg" else e["dimensions"].get(dim, {})).get(metric, {})
                            for e in (entry_a, entry_b)]
                    out.append({"system": run_a.system, "task": task, "dimension": dim, "metric": metric,
                                "a": side[0].get("value"), "b": side[1].get("value"),
                                "delta": test.delta if test else None, "ci": list(test.ci) if test else [None, None],
                                "p_value": test.p_value if test else None, "n": test.n_shared if test else 0})
    return out


def _main_metric(entry: dict[str, Any]) -> str | None:
    if entry.get("main_metric"):
        return str(entry["main_metric"])
    return next((m for m in COMPARED_METRICS if m in entry["average"]), None)


def rankings(pairs: list[tuple[Run, Run]]) -> dict[str, Any]:
    from .agreement import kendall_tau_b

    tasks = sorted({t for run_a, run_b in pairs for t in run_a.summary["tasks"] if t in run_b.summary["tasks"]})
    out: dict[str, Any] = {}
    for task in tasks:
        metric = _main_metric(pairs[0][0].summary["tasks"][task])
        values = []
        for run_a, run_b in pairs:
            ea, eb = run_a.summary["tasks"].get(task), run_b.summary["tasks"].get(task)
            va = ((ea or {}).get("average", {}).get(metric) or {}).get("value")
            vb = ((eb or {}).get("average", {}).get(metric) or {}).get("value")
            if va is not None and vb is not None:
                values.append((run_a.system, va, vb))
        entry: dict[str, Any] = {"metric": metric, "n_systems": len(values),
                                 "a": {s: va for s, va, _ in values}, "b": {s: vb for s, _, vb in values}}
        if len(values) >= MIN_SYSTEMS_FOR_TAU:
            entry["kendall_tau_b"] = kendall_tau_b([v[1] for v in values], [v[2] for v in values])
        else:
            entry["kendall_tau_b"] = None
            entry["note"] = f"{len(values)} systems judged by both; a ranking needs at least {MIN_SYSTEMS_FOR_TAU}"
        out[task] = entry
    return out


def compare(paths: list[Path]) -> dict[str, Any]:
    judge_a, judge_b, pairs = pair_runs(paths)
    by_role = _judgment_pairs(pairs)
    return {
        "judge_a": judge_a, "judge_b": judge_b,
        "runs": [{"system": a.system, "a": str(a.path), "b": str(b.path)} for a, b in pairs],
        "key_points": key_point_agreement(by_role.get("content", [])),
        "style": style_agreement(by_role.get("style", [])),
        "other_roles_not_compared": sorted(r for r in by_role if r not in ("content", "style")),
        "dimensions": dimension_deltas(pairs),
        "ranking": rankings(pairs),
    }


def _f(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Judge agreement: A = {report['judge_a']}, B = {report['judge_b']}", "",
             f"Systems judged by both: {', '.join(r['system'] for r in report['runs'])}", "",
             "## Key points (content)", "", "| task | items | key points | agreement | Cohen's κ | mentioned A | "
             "mentioned B |", "|---|---:|---:|---:|---:|---:|---:|"]
    kp = report["key_points"]
    for name, s in [*kp["by_task"].items(), ("all", kp["all"])]:
        lines.append(f"| {name} | {s['n_items']} | {s['n_key_points']} | {_f(s['agreement'])} | {_f(s['kappa'])} | "
                     f"{_f(s['mentioned_rate_a'])} | {_f(s['mentioned_rate_b'])} |")
    lines += ["", "## Style grades (0–4)", "", "| task | items | exact | ±1 | quadratic κ | mean A | mean B |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    st = report["style"]
    for name, s in [*st["by_task"].items(), ("all", st["all"])]:
        lines.append(f"| {name} | {s['n_items']} | {_f(s['exact'])} | {_f(s['within_1'])} | "
                     f"{_f(s['kappa_quadratic'])} | {_f(s['mean_a'], 2)} | {_f(s['mean_b'], 2)} |")
    lines += ["", "## Scores under each judge (Δ = B − A, paired bootstrap 95 % CI)", "",
              "| system | task | dimension | metric | A | B | Δ | 95 % CI | n |",
              "|---|---|---|---|---:|---:|---:|---|---:|"]
    for d in report["dimensions"]:
        low, high = d["ci"]
        ci = "–" if low is None else f"[{low:.2f}, {high:.2f}]"
        lines.append(f"| {d['system']} | {d['task']} | {d['dimension']} | {d['metric']} | {_f(d['a'], 2)} | "
                     f"{_f(d['b'], 2)} | {_f(d['delta'], 2)} | {ci} | {d['n']} |")
    lines += ["", "## System ranking", "", "| task | metric | systems | Kendall τ-b |", "|---|---|---:|---:|"]
    for task, r in report["ranking"].items():
        lines.append(f"| {task} | {r['metric']} | {r['n_systems']} | {_f(r['kendall_tau_b'])} |")
    return "\n".join(lines) + "\n"


def cmd_judge_agree(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markdown import Markdown

    from .store import write_atomic, write_json_atomic

    report = compare(list(args.runs))
    text = markdown(report)
    output = args.output or Path("judge_agree")
    write_json_atomic(output / "judge_agree.json", report)
    write_atomic(output / "judge_agree.md", text)
    console = Console()
    console.print(Markdown(text))
    Console(stderr=True).print(f"written {output / 'judge_agree.json'} and {output / 'judge_agree.md'}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("judge-agree", help="agreement of two judges on the same captions (κ, Δ, ranking τ)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                   help="run directories: the same predictions judged by two judges (one run per system and judge)")
    p.add_argument("--output", type=Path, help="folder for judge_agree.json and judge_agree.md (default ./judge_agree)")
    p.set_defaults(handler=cmd_judge_agree)
