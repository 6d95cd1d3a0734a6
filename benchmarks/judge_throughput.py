"""Judge throughput: the bare OpenAI client against our OpenAIJudge, on the loopback server.

All clients run in one process and one event loop, against one `tests/loopback_server.py`
instance (a real HTTP/1.1 server on 127.0.0.1 in a background thread of the same process, or with
`--server process` in a child process) that waits `--latency-ms` per request and answers with a
valid content-judge JSON. Phases, each with a fresh client, after an untimed warm-up:

  bare    `openai.AsyncOpenAI(max_retries=0)`, N chat completions, a Semaphore(concurrency) + gather;
          the request body is byte-for-byte what OpenAIJudge sends (same prompt, same options).
  judge   `OpenAIJudge(concurrency=C).judge(request)` from C workers over a queue (the runner's
          worker pattern), no cache.
  runner  `Runner.judge_all` (the real code path: make_judge, content keys, the SQLite cache in a
          temp folder, a disabled progress bar); every prompt is unique so nothing is a cache hit.

Reported: items/s, CPU ms per item (this process: the client, plus the server when it is a thread),
the server's max_in_flight, and ours/bare (the median of --repeat rounds). Target: runner >= 90 % of
bare at 200 ms latency and 64 in flight; exit status 1 when it is missed or any request failed.

    python benchmarks/judge_throughput.py --latency-ms 200 --concurrency 64 --items 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import openai  # noqa: E402
from loopback_server import LoopbackServer  # noqa: E402
from rich.progress import Progress  # noqa: E402

from anycapeval.judges.openai_judge import OpenAIJudge  # noqa: E402
from anycapeval.judges.roles import CONTENT  # noqa: E402
from anycapeval.prompts import format_key_points, load_template  # noqa: E402
from anycapeval.runner import Runner, RunOptions  # noqa: E402
from anycapeval.store import content_key  # noqa: E402
from anycapeval.task_config import tasks_dir  # noqa: E402
from anycapeval.types import OK, JudgeRequest  # noqa: E402

MODEL = "loopback-judge"
KEY_POINTS = ("a", "b")
ANSWER = json.dumps({"decisions": [{"key_point": 1, "score": 1}, {"key_point": 2, "score": 0}]})
TARGET_RATIO = 0.90


def _serve(conn: Any, latency_s: float, lifetime_s: float) -> None:
    """Child process: one LoopbackServer, driven over a pipe (port, reset, stats, stop)."""
    with LoopbackServer(lambda body: ANSWER, latency_s=latency_s, max_lifetime_s=lifetime_s) as srv:
        conn.send(srv.port)
        while True:
            command = conn.recv()
            if command == "reset":
                srv.reset_stats()
                conn.send(None)
            elif command == "stats":
                conn.send((srv.request_count, srv.max_in_flight))
            else:
                break


class ServerProcess:
    """The same server in a child process (its own GIL and core), with the stats LoopbackServer has."""

    def __init__(self, latency_s: float, lifetime_s: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(
            target=_serve, args=(child_conn, latency_s, lifetime_s), daemon=True)
        self.latency_s, self.lifetime_s = latency_s, lifetime_s

    def __enter__(self) -> ServerProcess:
        self.proc.start()
        self.port = self.conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.send("stop")
        self.proc.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset_stats(self) -> None:
        self.conn.send("reset")
        self.conn.recv()

    def _stats(self) -> tuple[int, int]:
        self.conn.send("stats")
        return self.conn.recv()  # type: ignore[no-any-return]

    request_count = property(lambda self: self._stats()[0])
    max_in_flight = property(lambda self: self._stats()[1])


def make_requests(n: int, tag: str) -> list[JudgeRequest]:
    """N content requests rendered from the shipped content template; each prompt is unique."""
    template = load_template("content", tasks_dir() / "prompts" / "anycapeval_content.txt", CONTENT.placeholders)
    out = []
    for i in range(n):
        caption = f"[{tag} #{i}] A red kite flies above a green field while two children run after it."
        prompt = template.render(key_points=format_key_points(KEY_POINTS), answer=caption)
        out.append(JudgeRequest(role="content", rules=CONTENT, prompt=prompt, caption=caption, key_points=KEY_POINTS))
    return out


def bare_kwargs(request: JudgeRequest) -> dict[str, Any]:
    """Exactly the body OpenAIJudge sends for a text-only content request (its defaults): the prompt as a
    plain string and the content role's schema as structured output."""
    schema = CONTENT.schema(request)  # type: ignore[misc]
    return {"model": MODEL, "messages": [{"role": "user", "content": request.prompt}], "max_tokens": 1024,
            "temperature": 0.0, "seed": 1234, "response_format": {
                "type": "json_schema", "json_schema": {"name": schema["title"], "schema": schema, "strict": True}}}


async def run_bare(base_url: str, requests: list[JudgeRequest], concurrency: int) -> int:
    client = openai.AsyncOpenAI(api_key="test", base_url=base_url, max_retries=0)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(request: JudgeRequest) -> bool:
        async with semaphore:
            response = await client.chat.completions.create(**bare_kwargs(request))
        return bool(response.choices and response.choices[0].message.content)

    try:
        return sum(await asyncio.gather(*(one(r) for r in requests)))
    finally:
        await client.close()


async def run_judge(base_url: str, requests: list[JudgeRequest], concurrency: int) -> int:
    judge = OpenAIJudge(MODEL, base_url=base_url, api_key="test", concurrency=concurrency)
    queue: asyncio.Queue[JudgeRequest] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    ok = 0

    async def worker() -> None:
        nonlocal ok
        while not queue.empty():
            judgment = await judge.judge(queue.get_nowait())
            ok += judgment.status == OK

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(requests)))))
    finally:
        await judge.aclose()
    return ok


async def run_runner(base_url: str, requests: list[JudgeRequest], concurrency: int, cache_path: Path) -> int:
    options = RunOptions(model="reference", tasks="anycapeval_image_content", judge=f"openai:{MODEL}",
                         judge_base_url=base_url, judge_concurrency=concurrency, cache_path=cache_path)
    runner = Runner(options)
    judge = runner.judge_for(runner.tasks[0], "content")
    keyed = [(content_key("judgment", judge.identity, r.role, r.prompt, None), r) for r in requests]
    try:
        with Progress(disable=True) as progress:
            results = await runner.judge_all(judge, keyed, progress, "bench")
    finally:
        await judge.aclose()  # type: ignore[attr-defined]
        runner.cache.close()
    return sum(j.status == OK for j in results.values())


async def timed(phase: str, srv: Any, coro: Any, n: int) -> dict[str, Any]:
    srv.reset_stats()
    cpu0, t0 = time.process_time(), time.perf_counter()
    ok = await coro
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"phase": phase, "items": n, "ok": ok, "wall_s": wall, "items_per_s": n / wall,
            "cpu_ms_per_item": 1000 * cpu / n, "server_requests": srv.request_count,
            "max_in_flight": srv.max_in_flight}


async def main_async(args: argparse.Namespace, srv: Any, tmp: Path) -> list[dict[str, Any]]:
    url, c = srv.base_url, args.concurrency
    # Warm-up (untimed): lazy imports in openai/httpx2 and the first pydantic model builds.
    await run_bare(url, make_requests(c, "warm-bare"), c)
    await run_judge(url, make_requests(c, "warm-judge"), c)
    rows = []
    for rep in range(args.repeat):
        for phase in ("bare", "judge", "runner"):
            requests = make_requests(args.items, f"{phase}-{rep}")
            if phase == "bare":
                coro = run_bare(url, requests, c)
            elif phase == "judge":
                coro = run_judge(url, requests, c)
            else:
                coro = run_runner(url, requests, c, tmp / f"cache-{rep}.sqlite")
            row = await timed(phase, srv, coro, args.items)
            row["repeat"] = rep
            rows.append(row)
            print(f"  repeat {rep} {phase:<6} {row['items_per_s']:8.1f} items/s  "
                  f"max_in_flight {row['max_in_flight']:3d}  ok {row['ok']}/{row['items']}", file=sys.stderr)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for phase in ("bare", "judge", "runner"):
        mine = [r for r in rows if r["phase"] == phase]
        rates = [r["items_per_s"] for r in mine]
        out[phase] = {"items_per_s_median": statistics.median(rates), "items_per_s_best": max(rates),
                      "cpu_ms_per_item_median": statistics.median(r["cpu_ms_per_item"] for r in mine),
                      "max_in_flight": max(r["max_in_flight"] for r in mine),
                      "ok": sum(r["ok"] for r in mine), "items": sum(r["items"] for r in mine)}
    bare = out["bare"]["items_per_s_median"]
    for phase in ("judge", "runner"):
        out[phase]["ratio_to_bare"] = out[phase]["items_per_s_median"] / bare
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=200.0, help="server latency per request")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (both clients)")
    parser.add_argument("--items", type=int, default=2000, help="requests per phase")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of (bare, judge, runner); medians reported")
    parser.add_argument("--server", choices=("thread", "process"), default="thread",
                        help="loopback server in a thread of this process (default) or in a child process")
    parser.add_argument("--json-out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()

    ideal = args.concurrency / (args.latency_ms / 1000) if args.latency_ms > 0 else float("inf")
    lifetime = 600 + 3 * args.repeat * args.items / min(ideal, 50)  # bounded, but never mid-run
    latency_s = args.latency_ms / 1000
    server = (LoopbackServer(lambda body: ANSWER, latency_s=latency_s, max_lifetime_s=lifetime)
              if args.server == "thread" else ServerProcess(latency_s, lifetime))
    with tempfile.TemporaryDirectory(prefix="anycap-bench-") as tmp, server as srv:
        rows = asyncio.run(main_async(args, srv, Path(tmp)))
    summary = summarise(rows)

    print(f"\njudge throughput: latency {args.latency_ms:g} ms, concurrency {args.concurrency}, "
          f"{args.items} items x {args.repeat} repeat(s), server in a {args.server}; ideal {ideal:.1f} items/s")
    print(f"{'phase':<8}{'items/s (median)':>18}{'best':>10}{'vs bare':>9}{'cpu ms/item':>13}"
          f"{'max_in_flight':>15}{'ok':>12}")
    for phase, s in summary.items():
        ratio = f"{s['ratio_to_bare']:.1%}" if "ratio_to_bare" in s else "-"
        print(f"{phase:<8}{s['items_per_s_median']:>18.1f}{s['items_per_s_best']:>10.1f}{ratio:>9}"
              f"{s['cpu_ms_per_item_median']:>13.2f}{s['max_in_flight']:>15d}{s['ok']:>7d}/{s['items']}")
    ratio = summary["runner"]["ratio_to_bare"]
    passed = ratio >= TARGET_RATIO and all(s["ok"] == s["items"] for s in summary.values())
    print(f"target ours(runner)/bare >= {TARGET_RATIO:.0%}: {ratio:.1%} -> {'PASS' if passed else 'FAIL'}")

    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({
            "benchmark": "judge_throughput", "args": {k: str(v) if isinstance(v, Path) else v
                                                     for k, v in vars(args).items()},
            "ideal_items_per_s": ideal, "python": platform.python_version(), "openai": openai.__version__,
            "target_ratio": TARGET_RATIO, "passed": passed, "summary": summary, "runs": rows,
        }, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
