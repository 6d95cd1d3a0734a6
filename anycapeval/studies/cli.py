"""Study commands: `anycapeval correlate`, `anycapeval judge-check`, `anycapeval kpd-study`."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console()
console = Console(stderr=True)

CORRELATE_EPILOG = """examples:
  anycapeval correlate --human ../shared/data/human/thumb_coco.jsonl --format thumb --output runs/thumb
  anycapeval correlate --human ../shared/data/human/fense_audiocaps_eval.json --format fense \\
      --metric bleu4,meteor,cider,minilm,offline_judge --output runs/fense
  anycapeval correlate --human ratings.csv --format csv --columns candidate=caption,references=refs,human=score \\
      --metric judge --judge openai:gpt-4o-2024-08-06 --output runs/mine
"""


def _default_output(name: str) -> Path:
    return Path("runs") / f"{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{name}"


def _judge_group(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group("judge")
    g.add_argument("--judge", required=required, help="judge spec: offline, openai:<snapshot>, fake:perfect|zero|fail")
    g.add_argument("--judge-base-url", help="base URL of an OpenAI-compatible server")
    g.add_argument("--judge-key-file", help="file holding the API key (default: $OPENAI_API_KEY)")
    g.add_argument("--judge-concurrency", type=int, default=16, help="judge requests in flight (default 16)")
    g.add_argument("--judge-max-attempts", type=int, default=5, help="tries per judgment before judge_error")


def register(sub: Any) -> None:
    c = sub.add_parser(
        "correlate", help="agreement of metrics and judges with human judgments (THumB, FENSE, any CSV)",
        description="Score human-judged captions with metrics and report sample-level Pearson, Spearman, Kendall "
        "tau-b/tau-c with bootstrap 95% CIs (rated captions) or FENSE pairwise accuracy per facet (pairwise votes). "
        "Writes DIR/correlation.json, DIR/correlation.md and PNG plots.",
        epilog=CORRELATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--human", required=True, type=Path, help="the human-judgment file")
    c.add_argument("--format", required=True, choices=("thumb", "fense", "csv"),
                   help="thumb: THumB JSONL; fense: AudioCaps-Eval JSON (or its pairs JSONL); csv: see --columns")
    c.add_argument("--columns", help="csv only: candidate=COL,references=COL[+COL...],human=COL[,system=COL]"
                   "[,id=COL][,group=COL]; a references cell may hold a JSON list")
    c.add_argument("--target", default="human_score", help="thumb: which score column (human_score, P, R, Fl, ...)")
    c.add_argument("--metric", default="bleu4,meteor,rouge_l,cider,minilm,offline_judge",
                   help="comma-separated: bleu1..bleu4, meteor, rouge_l, cider, minilm, offline_judge, judge "
                   "(default: all offline metrics)")
    c.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the CIs (default 1000)")
    c.add_argument("--cache", type=Path, help="SQLite cache for judge answers (default: the project cache)")
    c.add_argument("--judge-prompt", type=Path, help="style prompt template for --metric judge")
    c.add_argument("--output", type=Path, help="output folder (default runs/<time>-correlate)")
    _judge_group(c, required=False)
    c.set_defaults(handler=cmd_correlate)

    j = sub.add_parser(
        "judge-check", help="repeatability, self-consistency and length bias of a judge",
        description="Judge each task's reference captions K times with fresh calls (no cache, varied seeds): "
        "agreement, score spread and parse failures; content tasks: recall of each reference on its own key points "
        "and on another item's; style tasks: grade shift for a longer paraphrase with the same meaning.")
    j.add_argument("--tasks", required=True, help="task names or groups (e.g. demo, anycapeval_image)")
    j.add_argument("--data-dir", help="folder with the official AnyCapEval files (for anycapeval* tasks)")
    j.add_argument("--repeats", type=int, default=3, help="judging rounds per request (default 3)")
    j.add_argument("--seed", type=int, default=1234, help="seed of the first round; round k uses seed + k")
    j.add_argument("--limit", type=int, help="only the first N items of each task")
    j.add_argument("--output", type=Path, help="output folder (default runs/<time>-judge-check)")
    _judge_group(j, required=True)
    j.set_defaults(handler=cmd_judge_check)

    k = sub.add_parser(
        "kpd-study", help="key-point recall and KPD against caption length (and human information counts)",
        description="From a content run directory: correlation of key-point recall and per-item KPD with caption "
        "length, plots; with --counts CSV: correlation of raw matched key points, length and KPD with per-item human "
        "counts of information (the question of the AnyCap paper's Fig. 3b).")
    k.add_argument("--run", required=True, type=Path, help="run directory with scores.jsonl")
    k.add_argument("--counts", type=Path, help="CSV of per-item human information counts")
    k.add_argument("--id-column", default="id", help="item id column of --counts (default id)")
    k.add_argument("--count-column", default="human_count", help="count column of --counts (default human_count)")
    k.add_argument("--task-column", help="task column of --counts when ids repeat across tasks")
    k.add_argument("--output", type=Path, help="output folder (default: RUN/kpd_study)")
    k.set_defaults(handler=cmd_kpd_study)


def _judge_config(args: argparse.Namespace) -> Any:
    from .metrics import JudgeConfig

    if not args.judge:
        return None
    options = {"max_attempts": args.judge_max_attempts} if args.judge.startswith("openai") else {}
    return JudgeConfig(spec=args.judge, base_url=args.judge_base_url, key_file=args.judge_key_file,
                       concurrency=args.judge_concurrency, cache_path=getattr(args, "cache", None),
                       prompt=getattr(args, "judge_prompt", None), options=options)


def cmd_correlate(args: argparse.Namespace) -> int:
    from .correlate import STAT_LABELS, run_correlate
    from .metrics import parse_metrics

    output = args.output or _default_output("correlate")
    result = run_correlate(args.human, args.format, parse_metrics(args.metric), output, columns=args.columns,
                           target=args.target, judge=_judge_config(args), n_resamples=args.resamples)
    study = result["study"]
    table = Table(title=f"{Path(study['human_file']).name}: {study['n']} {study['unit']}")
    table.add_column("metric")
    if study["kind"] == "rated":
        for label in STAT_LABELS.values():
            table.add_column(label, justify="right")
        for metric in study["metrics"]:
            r = result[metric]
            table.add_row(metric, *("–" if r[s]["value"] is None else
                                    f"{r[s]['value']:.3f} [{r[s]['ci'][0]:.3f}, {r[s]['ci'][1]:.3f}]"
                                    for s in STAT_LABELS))
    else:
        facets = ["HC", "HI", "HM", "MM", "total"]
        for f in facets:
            table.add_column(f, justify="right")
        for metric in study["metrics"]:
            acc = result[metric]["pairwise_accuracy"]
            table.add_row(metric, *(f"{acc[f]:.1f}" if f in acc else "–" for f in facets))
    out.print(table)
    errors = {m: result[m]["n_judge_error"] for m in study["metrics"] if result[m]["n_judge_error"]}
    if errors:
        console.print(f"[yellow]warning:[/yellow] failed judgments left out: {errors}")
    console.print(f"results in [bold]{output}[/bold] (correlation.json, correlation.md, plots)")
    return 0


def cmd_judge_check(args: argparse.Namespace) -> int:
    from .judge_check import run_judge_check

    output = args.output or _default_output("judge-check")
    options = {"max_attempts": args.judge_max_attempts} if args.judge.startswith("openai") else {}
    result = run_judge_check(args.tasks, args.judge, output, repeats=args.repeats, seed=args.seed,
                             data_dir=args.data_dir, limit=args.limit,
                             judge_args={"base_url": args.judge_base_url, "key_file": args.judge_key_file,
                                         "concurrency": args.judge_concurrency, "options": options})
    table = Table(title=f"judge check: {args.judge}, {args.repeats} repeats")
    for col in ("task", "items", "agreement", "score std", "parse fail", "own recall", "other recall", "length shift"):
        table.add_column(col, justify="left" if col == "task" else "right", no_wrap=col == "task")

    def fmt(v: Any) -> str:
        return "–" if v is None else f"{v:.3f}"

    for name, t in result["tasks"].items():
        sc, lb = t.get("self_consistency", {}), t.get("length_bias", {})
        table.add_row(name, str(t["n_items"]), fmt(t["agreement"]), fmt(t["score_std_mean"]),
                      fmt(t["parse_failure_rate"]), fmt(sc.get("own_reference_recall")),
                      fmt(sc.get("other_reference_recall")), fmt(lb.get("mean_grade_shift")))
    out.print(table)
    console.print(f"results in [bold]{output}[/bold] (judge_check.json, judge_check.md)")
    return 0


def cmd_kpd_study(args: argparse.Namespace) -> int:
    from .kpd_question import run_kpd_study

    output = args.output or args.run / "kpd_study"
    result = run_kpd_study(args.run, output, args.counts, args.id_column, args.count_column, args.task_column)
    table = Table(title=f"KPD study: {result['n_items']} content items")
    for col in ("relation", "Pearson", "Spearman"):
        table.add_column(col)
    rows = [("recall vs length", result["recall_vs_length"]), ("KPD vs length", result["kpd_vs_length"])]
    rows += [(f"{k} vs human count", result["human_counts"][k]) for k in ("raw_matched", "length", "kpd")
             if "human_counts" in result]
    for label, stats in rows:
        table.add_row(label, *("–" if stats[s]["value"] is None else f"{stats[s]['value']:.3f}"
                               for s in ("pearson", "spearman")))
    out.print(table)
    console.print(f"results in [bold]{output}[/bold] (kpd_study.json, kpd_study.md, kpd_vs_length.png)")
    return 0
