"""The OpenAI-compatible judge and the runner against a real HTTP server on 127.0.0.1."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import cli_env, judge_answer
from loopback_server import LoopbackServer, Reply, Script

from anycapeval.runner import RunOptions, run

SECRET = "sk-test-SECRET-never-written-0123456789"


def options(server, tmp_path, **kw):
    base = dict(model="reference", tasks="demo_image_content,demo_audio_style", judge="openai:judge-snap",
                judge_base_url=server.base_url, judge_concurrency=4, cache_path=tmp_path / "cache.sqlite",
                output=tmp_path / "run", judge_options={"retry_base_s": 0.01})
    base.update(kw)
    return RunOptions(**base)


def test_concurrency_limit_holds(tmp_path):
    with LoopbackServer(judge_answer, latency_s=0.05) as server:
        result = run(options(server, tmp_path, judge_concurrency=3))
    assert result.exit_code == 0
    assert server.request_count == 16 and server.max_in_flight == 3
    body = server.requests[0]
    assert body["temperature"] == 0 and body["seed"] == 1234 and body["model"] == "judge-snap"


def test_429_500_and_malformed_answers_are_retried(tmp_path):
    steps = [Reply(status=429, content="slow down"), Reply(status=500, content="oops"),
             Reply(raw_body=b"{truncated"), "not json at all",
             json.dumps({"decisions": [{"key_point": 1, "score": 1}]})]  # wrong count for every demo item
    with LoopbackServer(Script(steps, then=judge_answer)) as server:
        result = run(options(server, tmp_path, judge_concurrency=1, tasks="demo_image_content",
                             judge_options={"retry_base_s": 0.01, "max_attempts": 6}))
    assert result.exit_code == 0
    summary = result.summary["tasks"]["demo_image_content"]["average"]
    assert summary["n"] == 8 and summary["n_judge_error"] == 0
    assert server.request_count == 8 + len(steps)
    rows = [json.loads(line) for line in (tmp_path / "run" / "judgments.jsonl").read_text().splitlines()]
    assert rows[0]["attempts"] == len(steps) + 1
    assert sum(r["usage"]["prompt_tokens"] > 0 for r in rows) == 8


def test_judge_that_always_fails_counts_errors_and_exits_nonzero(tmp_path, isolated_cache):
    wrong_count = json.dumps({"decisions": [{"key_point": 1, "score": 1}]})
    with LoopbackServer(lambda body: Reply(status=500, content="down") if "Requested style" in str(body)
                        else wrong_count) as server:
        out = tmp_path / "run"
        proc = subprocess.run(
            [sys.executable, "-m", "anycapeval.cli", "run", "--model", "reference", "--tasks",
             "demo_image_content,demo_audio_style", "--judge", "openai:judge-snap", "--judge-base-url",
             server.base_url, "--judge-max-attempts", "2", "--output", str(out), "--cache", str(tmp_path / "c.db")],
            capture_output=True, text=True, env=cli_env(isolated_cache), timeout=300)
    assert proc.returncode == 3, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    for task in summary["tasks"].values():
        assert task["average"]["n"] == 0 and task["average"]["n_judge_error"] == 8
        for dim in task["dimensions"].values():
            assert dim["n"] == 0 and dim["n_judge_error"] >= 1
            assert all(v["value"] is None for k, v in dim.items() if isinstance(v, dict))  # never a zero score
    rows = [json.loads(line) for line in (out / "judgments.jsonl").read_text().splitlines()]
    content = [r for r in rows if r["role"] == "content"]
    assert all("1 decisions for" in r["error"] and "demo_image_content.jsonl:" in r["item_source"] for r in content)
    assert "judgments failed" in proc.stderr


def test_rerun_sends_zero_requests_and_key_never_written(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with LoopbackServer(judge_answer) as server:
        first = run(options(server, tmp_path, judge_base_url=server.base_url))
        n = server.request_count
        second = run(options(server, tmp_path, output=tmp_path / "run2"))
        assert server.request_count == n == 16
    assert first.summary["tasks"] == second.summary["tasks"]
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def _cli(server, out, cache, env):
    return [sys.executable, "-m", "anycapeval.cli", "run", "--model", "reference", "--tasks", "demo",
            "--judge", "openai:judge-snap", "--judge-base-url", server.base_url, "--judge-concurrency", "2",
            "--output", str(out), "--cache", str(cache)]


def test_killed_run_resumes_identical_to_uninterrupted(tmp_path, isolated_cache):
    env = cli_env(isolated_cache)
    with LoopbackServer(judge_answer, latency_s=0.05) as server:
        full = subprocess.run(_cli(server, tmp_path / "full", tmp_path / "full.db", env), env=env,
                              capture_output=True, text=True, timeout=300)
        assert full.returncode == 0, full.stderr
        total = server.request_count
        server.reset_stats()

        proc = subprocess.Popen(_cli(server, tmp_path / "resumed", tmp_path / "resumed.db", env), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while server.request_count < total // 2 and time.time() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before_kill = server.request_count
        assert 0 < before_kill < total
        assert not (tmp_path / "resumed" / "summary.json").exists()

        resumed = subprocess.run(_cli(server, tmp_path / "resumed", tmp_path / "resumed.db", env), env=env,
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        # finished judgments are not redone: at most the two in flight at the kill are sent again
        assert server.request_count - before_kill <= total - before_kill + 2
        assert server.request_count < total + 3
    a = json.loads((tmp_path / "full" / "summary.json").read_text())
    b = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert a == b
    for name in ("scores.jsonl", "predictions.jsonl"):
        assert (tmp_path / "full" / name).read_text() == (tmp_path / "resumed" / name).read_text()
