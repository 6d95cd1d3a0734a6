"""The judge and the `openai:` system against a real OpenAI-compatible server: llama-cpp-python's server
with SmolLM2-135M-Instruct (tests/llama_server.py). A tiny model writes poor judgments, but every one must
be well-formed or named as an error; what is checked is that real servers accept what we send."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import cli_env
from llama_server import MODEL_ALIAS, LlamaServer

from anycapeval.chat import ChatFatalError
from anycapeval.runner import RunOptions, run

JUDGE = f"openai:{MODEL_ALIAS}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LlamaServer(tmp_path_factory.mktemp("llama") / "server.log") as running:
        yield running


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_judge_answers_are_well_formed_and_name_the_served_model(server, tmp_path):
    result = run(RunOptions(model="reference", tasks="demo", judge=JUDGE, judge_base_url=server.base_url,
                            judge_media="never", limit=2, max_judge_error_rate=0.25, judge_concurrency=2,
                            judge_params={"max_tokens": 160}, cache_path=tmp_path / "c.db", output=tmp_path / "run"))
    errors = result.summary["judge_errors"]
    assert errors["of"] == 12 and errors["n"] <= 3, [r["error"] for r in rows(tmp_path / "run" / "judgments.jsonl")]
    assert result.exit_code == 0
    judged = rows(tmp_path / "run" / "judgments.jsonl")
    assert all(r["served_model"] == MODEL_ALIAS for r in judged if r["status"] == "ok")
    assert result.summary["served_models"]["judge"][JUDGE][MODEL_ALIAS] >= 9
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    shape = manifest["judges"][JUDGE]["request_shape"]
    # llama-cpp-python refuses json_schema (HTTP 500) and takes its own dialect: json_object with a schema
    assert shape["structured_output"] == "json_object_schema" and "json_schema refused" in \
        shape["structured_output_history"][0]
    scored = [t["average"]["n"] for t in result.summary["tasks"].values()]
    assert sum(scored) == 12 - errors["n"]


def test_blind_text_only_captioner(server, tmp_path):
    result = run(RunOptions(model=JUDGE, tasks="demo", judge="fake:perfect", limit=2,
                            model_args={"base_url": server.base_url, "media": "never", "max_tokens": "48"},
                            cache_path=tmp_path / "c.db", output=tmp_path / "run"))
    assert result.exit_code == 0 and result.summary["generation_errors"]["n"] == 0
    predictions = rows(tmp_path / "run" / "predictions.jsonl")
    assert len(predictions) == 12 and all(p["caption"].strip() for p in predictions)
    assert {p["served_model"] for p in predictions} == {MODEL_ALIAS}
    assert {p["finish_reason"] for p in predictions} <= {"stop", "length"}


def test_killed_run_resumes_without_asking_again(server, tmp_path, isolated_cache):
    cache = tmp_path / "c.db"
    command = [sys.executable, "-m", "anycapeval.cli", "run", "--model", "reference", "--tasks",
               "demo_image_content,demo_audio_content", "--limit", "4", "--judge", JUDGE, "--judge-base-url",
               server.base_url, "--judge-param", "max_tokens=160", "--judge-concurrency", "1",
               "--max-judge-error-rate", "0.5", "--output", str(tmp_path / "run"), "--cache", str(cache)]

    def finished() -> dict[str, int]:
        """Cached judgments: key -> rowid (INSERT OR REPLACE gives a re-judged key a new rowid)."""
        if not cache.exists():
            return {}
        try:
            with sqlite3.connect(cache) as db:
                return dict(db.execute("SELECT key, rowid FROM entries WHERE kind = 'judgment'").fetchall())
        except sqlite3.OperationalError:  # the run has not created its table yet
            return {}

    proc = subprocess.Popen(command, env=cli_env(isolated_cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(finished()) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished()
    assert 2 <= len(before) < 8 and not (tmp_path / "run" / "summary.json").exists()
    resumed = subprocess.run(command, env=cli_env(isolated_cache), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = finished()
    assert all(after[key] == rowid for key, rowid in before.items())  # finished judgments were not asked again
    judged = rows(tmp_path / "run" / "judgments.jsonl")
    assert len(judged) == 8 and {r["cache_key"] for r in judged if r["status"] == "ok"} <= set(after)


def test_server_that_refuses_image_parts_stops_the_run_with_its_reason(server, tmp_path, isolated_cache):
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "anycapeval.cli", "run", "--model", JUDGE, "--model-args",
         f"base_url={server.base_url}", "--tasks", "demo_image_content", "--judge", "fake:perfect",
         "--output", str(tmp_path / "run"), "--cache", str(tmp_path / "c.db")],
        capture_output=True, text=True, env=cli_env(isolated_cache), timeout=300)
    assert proc.returncode == 2
    assert "can only concatenate str" in proc.stderr  # the server's own words
    assert time.monotonic() - started < 60
    assert not (tmp_path / "run" / "summary.json").exists()


def test_fatal_error_class_is_raised_in_process(server, tmp_path):
    with pytest.raises(ChatFatalError, match="input_audio|audio"):
        run(RunOptions(model=JUDGE, tasks="demo_audio_content", judge="fake:perfect", limit=2,
                       model_args={"base_url": server.base_url}, cache_path=tmp_path / "c.db",
                       output=tmp_path / "run"))
