"""Command line: `anycapeval run|score|tasks|data`, plus the commands that live beside their feature
(systems, merge, acm, leaderboard, correlate, judge-check, kpd-study; see COMMAND_MODULES).

Exit codes: 0 fine; 2 bad input, usage, or a server that cannot do the work (the message says what to
fix); 3 too many judge errors; 4 too many generation errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from . import __version__
from .types import AnyCapError

console = Console(stderr=True)
out = Console()

EPILOG = """examples:
  anycapeval run --model reference --tasks demo
  anycapeval run --model predictions:my_captions.jsonl --tasks anycapeval_image --data-dir ./AnyCapEval \\
      --judge openai --judge-concurrency 32
  anycapeval score --predictions gen_style.jsonl --tasks anycapeval_video_style --judge openai:gpt-4o-2024-08-06
  anycapeval run --model hf:Qwen/Qwen2.5-VL-7B-Instruct --model-args device=cuda --tasks anycapeval_image \
      --data-dir ./AnyCapEval --judge openai
  anycapeval leaderboard runs/ --output board
"""


def _judge_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--tasks", required=True, help="task names and/or groups, comma-separated (see `anycapeval tasks`)")
    g.add_argument("--data-dir", help="folder with the official AnyCapEval files (or set ANYCAPEVAL_DATA_DIR, "
                   "or run `anycapeval data fetch`)")
    g.add_argument("--media-dir", action="append", metavar="[MODALITY=]DIR",
                   help="where the media files are, if not under --data-dir: DIR for every modality, or "
                   "image=DIR / video=DIR / audio=DIR (repeatable)")
    g.add_argument("--limit", type=int, help="only the first N items of each task (quick tries)")
    g.add_argument("--shard", metavar="K/N", help="run only the K-th of N contiguous blocks of each task's items "
                   "(K = 1..N), e.g. one per machine; join the run directories with `anycapeval merge`")
    j = p.add_argument_group("judge")
    j.add_argument("--judge", help="openai:<snapshot> for an OpenAI-compatible server, `openai` for each task's pinned "
                   "snapshot, azure:<deployment> for an Azure classic endpoint, `offline` (default: CPU "
                   "sentence-encoder approximation, no key), fake:perfect|zero|fail")
    j.add_argument("--judge-base-url", help="base URL of an OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp, "
                   "Azure's .../openai/v1/), or the Azure resource endpoint for azure:<deployment>")
    j.add_argument("--judge-param", action="append", metavar="K=V",
                   help="a judge request setting (repeatable): reasoning_effort=low, max_tokens=2048, "
                   "family=reasoning|chat|audio, structured=auto|json_schema|json_object_schema|json_object|none, "
                   "api_version=2024-10-21 (Azure); any other key is sent to the server as is (extra_body), "
                   "values read as JSON when they parse, e.g. top_k=20")
    j.add_argument("--judge-key-file", help="file holding the API key (default: $OPENAI_API_KEY)")
    j.add_argument("--judge-prompt", action="append", metavar="[ROLE=]FILE",
                   help="use another prompt template for role content or style (repeatable)")
    j.add_argument("--judge-concurrency", type=int, default=16, help="judge requests in flight (default 16)")
    j.add_argument("--judge-media", choices=("auto", "always", "never"), default="auto",
                   help="send media to the style judge: auto = when the file is there (default), always = a missing "
                   "file is that item's error, never = text only")
    j.add_argument("--judge-max-attempts", type=int, default=5, help="tries per judgment before judge_error")
    j.add_argument("--judge-temperature", type=float, default=0.0)
    j.add_argument("--judge-seed", type=int, default=1234)
    j.add_argument("--max-judge-error-rate", type=float, default=0.0,
                   help="exit with code 3 when more than this share of judgments failed (default 0)")
    j.add_argument("--max-generation-error-rate", type=float, default=0.0,
                   help="exit with code 4 when more than this share of generations failed (default 0)")
    j.add_argument("--allow-self-judge", action="store_true", help="allow the judge to be the system under test")
    j.add_argument("--judge-batch", action="store_true",
                   help="judge through the OpenAI Batch API (openai: judges; half price, results within 24 h): the "
                   "requests not in the cache are uploaded as batches and polled until done; kill the command and "
                   "re-run it to resume polling the same batches (nothing is submitted twice). Requests a batch "
                   "never ran (expired, cancelled, failed) become judge errors (exit 3); a re-run resubmits them")
    j.add_argument("--judge-batch-retry", choices=("online", "batch"), default="online",
                   help="batch lines that failed (an HTTP error, an unreadable answer): ask them again online with "
                   "the usual retries (default), or in follow-up batches (up to --judge-max-attempts rounds)")
    s = p.add_argument_group("scoring and output")
    s.add_argument("--protocol", choices=("default", "anycap_v1"), default="default",
                   help="default = corrected arithmetic; anycap_v1 = the official scripts' arithmetic (see README)")
    s.add_argument("--output", type=Path, help="run directory (default runs/<time>-<system>); re-run to resume")
    c = p.add_argument_group("cost")
    c.add_argument("--dry-run", action="store_true", help="call nothing: print, per task and role, the requests this "
                   "command would make (cache hits excluded), estimated tokens and the price from "
                   "references/prices.json")
    c.add_argument("--max-cost", type=float, metavar="USD", help="refuse to start (exit 2) when the estimated cost "
                   "(input + the whole output budget) is over USD")
    s.add_argument("--cache", type=Path, help="SQLite cache file (default ~/.cache/anycapeval/cache.sqlite, "
                   "or $ANYCAPEVAL_CACHE_DIR/cache.sqlite)")


# Commands that live beside their feature. Each module has `register(subparsers)`, which adds its
# parser(s) with `set_defaults(handler=fn)`; fn(args) -> exit code. Modules must import torch and
# other heavy libraries inside the handler, never at import time (`--help` stays fast).
COMMAND_MODULES = (
    "anycapeval.systems.cli",  # systems, merge
    "anycapeval.acm.cli",  # acm train|refine
    "anycapeval.leaderboard.cli",  # leaderboard
    "anycapeval.studies.cli",  # correlate, judge-check
    "anycapeval.judge_agree",  # judge-agree
    "anycapeval.lmeval",  # lm-eval-path
)


def _register_commands(sub: Any) -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anycapeval", description="Evaluate controllable captioning of images, videos and audio: AnyCapEval "
        "(KPD content and rubric style scores), MIA-Bench, VidCapBench and reference metrics; real captioners, the ACM "
        "refiner, leaderboards and metric studies. `anycapeval COMMAND --help` explains each command.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"anycapeval {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="generate captions with a system, judge and score them",
                         description="Generate (or read) captions, judge them, score them, write a run directory.")
    run.add_argument("--model", required=True, help="system under test: reference | predictions:<file> | "
                     "openai:<model> | hf:<path or hub id> | acm:<checkpoint> (see `anycapeval systems`)")
    m = run.add_argument_group("system")
    m.add_argument("--model-args", action="append", metavar="K=V[,K=V...]",
                   help="the system's settings, e.g. base_url=http://localhost:8000/v1,max_tokens=300,frames=16 "
                   "or device=cuda,dtype=bfloat16,batch_size=8 (see `anycapeval systems`; never put keys here)")
    m.add_argument("--base", metavar="SYSTEM", help="for acm:<checkpoint>: the system whose captions it refines")
    m.add_argument("--base-args", action="append", metavar="K=V[,K=V...]", help="--model-args for the --base system")
    m.add_argument("--generation-concurrency", type=int, default=8,
                   help="items generated at once by API systems (default 8; model-args concurrency overrides it)")
    _judge_args(run)

    score = sub.add_parser("score", help="judge and score captions you already have",
                           description="Same as `run --model predictions:FILE`.")
    score.add_argument("--predictions", required=True, type=Path,
                       help="JSONL: {id, caption[, task]} or the official AnyCap generation files")
    _judge_args(score)

    sub.add_parser("tasks", help="list tasks and groups")
    data = sub.add_parser("data", help="fetch or verify the official AnyCapEval data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="download the release from the Hugging Face Hub into the cache")
    fetch.add_argument("--target", type=Path, help="folder to download into (default: the cache)")
    fetch.add_argument("--revision", help="dataset revision (commit or tag)")
    verify = data_sub.add_parser("verify", help="check counts, ids, key points, constraints and checksums")
    verify.add_argument("--data-dir")
    _register_commands(sub)
    return parser


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from .api import run_results
    from .chat import parse_params
    from .prompts import parse_prompt_overrides
    from .report import print_summary
    from .runner import RunOptions
    from .scorers import all_roles
    from .systems import parse_model_args

    model = f"predictions:{args.predictions}" if args.command == "score" else args.model
    media_dir, media_dirs = parse_media_dirs(args.media_dir)
    options = RunOptions(
        model=model, tasks=args.tasks, data_dir=args.data_dir, media_dir=media_dir, media_dirs=media_dirs,
        judge=args.judge, shard=parse_shard(args.shard),
        model_args=parse_model_args(getattr(args, "model_args", None)), base=getattr(args, "base", None),
        base_args=parse_model_args(getattr(args, "base_args", None)),
        generation_concurrency=getattr(args, "generation_concurrency", 8),
        judge_base_url=args.judge_base_url, judge_key_file=args.judge_key_file,
        judge_prompts=parse_prompt_overrides(args.judge_prompt, all_roles()), judge_concurrency=args.judge_concurrency,
        judge_media=args.judge_media, protocol=args.protocol, output=args.output, limit=args.limit,
        max_judge_error_rate=args.max_judge_error_rate, cache_path=args.cache,
        allow_self_judge=args.allow_self_judge, command=["anycapeval", *argv],
        judge_options={"max_attempts": args.judge_max_attempts, "temperature": args.judge_temperature,
                       "seed": args.judge_seed} if (args.judge or "").startswith(("openai", "azure")) else {},
        judge_params=parse_params(args.judge_param), max_generation_error_rate=args.max_generation_error_rate,
        judge_batch=args.judge_batch, judge_batch_retry=args.judge_batch_retry,
    )
    if args.dry_run or args.max_cost is not None:
        from .dryrun import plan, print_plan, refusal

        lines = plan(options)
        if args.dry_run:
            print_plan(lines, out)
            return 0
        message = refusal(lines, args.max_cost)
        if message:
            raise AnyCapError(message)
    result = run_results(options)  # the same path as anycapeval.evaluate()
    if not result.summary:  # another rank of a torchrun / accelerate launch: rank 0 reports
        return result.exit_code
    print_summary(result.summary, out)
    for message in result.messages:
        console.print(f"[yellow]warning:[/yellow] {message}")
    console.print(f"results in [bold]{result.run_dir}[/bold] (summary.json, summary.md, scores.jsonl, judgments.jsonl)")
    return result.exit_code


def parse_media_dirs(values: list[str] | None) -> tuple[str | None, dict[str, str]]:
    """--media-dir DIR and/or --media-dir image=DIR ... -> (DIR for all, {modality: DIR})."""
    common: str | None = None
    per: dict[str, str] = {}
    for value in values or []:
        modality, sep, path = value.partition("=")
        if sep and modality in ("image", "video", "audio"):
            per[modality] = path
        elif common is None:
            common = value
        else:
            raise AnyCapError(f"--media-dir given twice without a modality ({common}, {value}): use image=DIR, "
                              "video=DIR, audio=DIR")
    return common, per


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    k, sep, n = value.partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit() or not 1 <= int(k) <= int(n):
        raise AnyCapError(f"--shard {value!r}: expected K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(k), int(n)


def cmd_tasks() -> int:
    from .registry import all_tasks, groups

    table = Table(title="tasks")
    for col in ("task", "version", "modality", "aspect", "scorer", "judge snapshots", "dimensions", "groups"):
        table.add_column(col)
    for name, task in all_tasks().items():
        c = task.config
        judges = ", ".join(f"{j.role}: {j.snapshot}" for j in c.judges) or "none"
        table.add_row(name, c.version, c.modality, c.aspect, c.scorer, judges,
                      " ".join(c.dimensions.values()), ", ".join(c.groups))
    out.print(table)
    for group, names in groups().items():
        out.print(f"[bold]{group}[/bold]: {', '.join(names)}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .release import fetch, verify

    if args.data_command == "fetch":
        path = fetch(args.target, args.revision)
        out.print(f"AnyCapEval data in {path}; it is now the default --data-dir")
        return 0
    rows = verify(args.data_dir)
    table = Table(title="anycapeval data verify")
    for col in ("check", "ok", "detail"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["check"], "[green]ok[/green]" if row["ok"] else "[red]FAIL[/red]", row["detail"])
    out.print(table)
    return 0 if all(r["ok"] for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("run", "score"):
            return cmd_run(args, argv)
        if getattr(args, "handler", None) is not None:
            return int(args.handler(args))
        if args.command == "tasks":
            return cmd_tasks()
        return cmd_data(args)
    except AnyCapError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: finished work is in the cache; re-run the same command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
