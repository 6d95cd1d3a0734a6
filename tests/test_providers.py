"""The chat layer against the strict OpenAI stand-in (tests/strict_openai.py), which refuses what the real
API refuses: reasoning parameters, audio on models without audio input, json_object without the word
"json", exhausted quota, rate limits; and which answers with dated snapshots behind aliases."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_env
from strict_openai import StrictOpenAI

from anycapeval.chat import ChatFatalError
from anycapeval.readers.anycapeval import demo_data_root, demo_root
from anycapeval.runner import RunOptions, run

STYLE_KINDS = ("image", "audio")


def official_data(root: Path, copies: int = 1) -> tuple[Path, Path]:
    """The demo items under the official AnyCapEval file names (content and style, every modality);
    `copies` > 1 repeats each file's records under new ids, for runs of a few hundred items."""
    data, media = root / "data", root / "media"
    for modality in ("image", "video", "audio"):
        for aspect in ("content", "style"):
            name = f"anycapeval_{modality}_ref{'' if (modality, aspect) == ('video', 'content') else '_' + aspect}"
            records = [json.loads(line) for line in
                       (demo_data_root() / modality / f"demo_{modality}_{aspect}.jsonl").read_text().splitlines()]
            out = [_copy(r, n) for n in range(copies) for r in records]
            (data / modality).mkdir(parents=True, exist_ok=True)
            (data / modality / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out))
    shutil.copytree(demo_root(), media, dirs_exist_ok=True)
    return data, media


def _copy(record: dict, n: int) -> dict:
    """The n-th copy of a record: a new id and a caption that differs, so its judge prompt is new too."""
    if not n:
        return record
    turns = [{**t, "value": f"{t['value']} (take {n})"} if t["from"] == "gpt" else t for t in record["conversations"]]
    return {**record, "id": n * 1000 + record["id"], "conversations": turns}


def official_style_prompts(root: Path) -> dict[str, Path]:
    """Prompts shaped like the official AnyCap ones: they name the answer's fields but never say "json"."""
    content = root / "content.txt"
    content.write_text("Here are key points a caption should cover:\n{key_points}\n\nThe caption:\n{answer}\n\n"
                       "Decide for each key point whether the caption covers it (1) or not (0). Answer with an "
                       "object caption_evaluation holding key_points_scores (key_point_1, key_point_2, ...) and "
                       "total_score.\n")
    style = root / "style.txt"
    style.write_text("Grade how well the caption follows the requested style ({caption_type}) from 0 to 4.\n"
                     "Reference caption: {reference}\nCaption: {output}\nAnswer with an object holding score and "
                     "reason.\n")
    return {"content": content, "style": style}


def text_of(body: dict) -> str:
    content = body["messages"][0]["content"]
    return content if isinstance(content, str) else "\n".join(p.get("text", "") for p in content if "text" in p)


def plain_answer(body: dict) -> str:
    """What a model reading the official-style prompts writes when no schema pins its answer."""
    text = text_of(body)
    if "Grade how well" in text:
        return '{"score": 3, "reason": "fits"}'
    n = len(re.findall(r"^\d+\. ", text.split("The caption:")[0], flags=re.M))
    scores = {f"key_point_{i}": 1 for i in range(1, n + 1)}
    return json.dumps({"caption_evaluation": {"key_points_scores": scores, "total_score": n}})


def options(server: StrictOpenAI, tmp_path: Path, data: Path, media: Path, **kw) -> RunOptions:
    base = dict(model="reference", tasks="anycapeval_image_content,anycapeval_image_style", data_dir=str(data),
                media_dir=str(media), judge_base_url=server.base_url, cache_path=tmp_path / "cache.sqlite",
                output=tmp_path / "run", judge_prompts=official_style_prompts(tmp_path),
                judge_options={"retry_base_s": 0.01})
    base.update(kw)
    return RunOptions(**base)


def test_reasoning_judge_gets_reasoning_parameters_and_records_its_snapshot(tmp_path):
    data, media = official_data(tmp_path)
    with StrictOpenAI() as server:
        result = run(options(server, tmp_path, data, media, judge="openai:gpt-5-mini",
                             judge_params={"reasoning_effort": "low"}))
    assert result.exit_code == 0 and result.summary["judge_errors"]["n"] == 0
    assert server.errors == []  # not one request refused
    for body in server.requests:
        assert "max_tokens" not in body and "temperature" not in body
        assert body["max_completion_tokens"] >= 4096 and body["reasoning_effort"] == "low"
        assert body["response_format"]["type"] == "json_schema"  # the official prompts never say "json"
        assert isinstance(body["messages"][0]["content"], (str, list))
    served = result.summary["served_models"]["judge"]["openai:gpt-5-mini"]
    assert served == {"gpt-5-mini-2025-08-07": 16}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    shape = manifest["judges"]["openai:gpt-5-mini"]["request_shape"]
    assert shape["family"] == "reasoning" and shape["token_limit"] == "max_completion_tokens"
    assert manifest["served_models"]["judge"]["openai:gpt-5-mini"] == {"gpt-5-mini-2025-08-07": 16}
    rows = [json.loads(line) for line in (tmp_path / "run" / "judgments.jsonl").read_text().splitlines()]
    assert all(r["served_model"] == "gpt-5-mini-2025-08-07" and r["system_fingerprint"].startswith("fp_")
               and r["finish_reason"] == "stop" and r["usage"]["reasoning_tokens"] > 0 for r in rows)
    assert any("reasoning model" in m for m in result.messages)
    assert any("gpt-5-mini" in m and "shuts down on 2026-12-11" in m for m in result.messages)


def test_official_prompts_on_a_model_without_json_schema_at_16_in_flight(tmp_path):
    """gpt-4-turbo refuses json_schema, and json_object needs the word "json", which the prompts lack: the
    dialect steps down once, under a lock, and not one of the 16 requests in flight is lost."""
    data, media = official_data(tmp_path, copies=4)
    with StrictOpenAI(plain_answer, latency_s=0.4) as server:  # long enough for 16 to be in flight on a busy CPU
        result = run(options(server, tmp_path, data, media, judge="openai:gpt-4-turbo", judge_concurrency=16))
    assert result.exit_code == 0 and result.summary["judge_errors"] == {"n": 0, "of": 64, "rate": 0.0,
                                                                        "max_allowed_rate": 0.0}
    assert server.max_in_flight == 16
    refused = server.errors
    assert refused and all(e["param"] in ("response_format", "messages") for e in refused)
    assert len(refused) <= 32  # the requests in flight when the dialect changed, at most twice; never per item
    modes = [b.get("response_format", {}).get("type", "plain") for b in server.requests]
    assert modes[-1] == "plain" and modes.count("plain") == 64
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    shape = manifest["judges"]["openai:gpt-4-turbo"]["request_shape"]
    # json_schema refused, then json_object with a schema refused for want of "json"; json_object stays the
    # dialect, but a prompt without the word goes plain
    assert shape["structured_output"] == "json_object" and len(shape["structured_output_history"]) == 2
    assert result.summary["served_models"]["judge"]["openai:gpt-4-turbo"] == {"gpt-4-turbo-2024-04-09": 64}


def test_audio_style_with_its_pinned_audio_judge_sends_nothing_the_model_refuses(tmp_path):
    data, media = official_data(tmp_path)
    with StrictOpenAI(plain_answer) as server:
        result = run(options(server, tmp_path, data, media, tasks="anycapeval_audio_style", judge="openai"))
    assert result.exit_code == 0 and result.summary["judge_errors"]["n"] == 0
    assert server.errors == []
    assert all(b["model"] == "gpt-audio-1.5" and "response_format" not in b for b in server.requests)
    assert all(any(p["type"] == "input_audio" for p in b["messages"][0]["content"]) for b in server.requests)
    task = result.summary["tasks"]["anycapeval_audio_style"]
    assert task["judge_media_seen"] == {"audio": 8}
    assert task["paper_judge"] == "gpt-4o-audio-preview"  # leaderboards mark it as not the paper's judge


def test_audio_sent_to_a_model_without_audio_input_stops_at_once(tmp_path):
    data, media = official_data(tmp_path)
    with StrictOpenAI(plain_answer) as server:
        with pytest.raises(ChatFatalError, match="refused the media in the request: HTTP 400"):
            run(options(server, tmp_path, data, media, tasks="anycapeval_audio_style",
                        judge="openai:gpt-4o-2024-08-06", judge_concurrency=1))
        assert server.request_count == 1


def test_insufficient_quota_stops_a_342_item_run_in_seconds(tmp_path, isolated_cache):
    data, _ = official_data(tmp_path, copies=43)  # 8 x 43 = 344 items; --limit 342
    with StrictOpenAI(insufficient_quota=True) as server:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "anycapeval.cli", "run", "--model", "reference", "--tasks",
             "anycapeval_image_content", "--data-dir", str(data), "--limit", "342", "--judge",
             "openai:gpt-4o-2024-08-06", "--judge-base-url", server.base_url, "--judge-concurrency", "16",
             "--output", str(tmp_path / "run"), "--cache", str(tmp_path / "c.db")],
            capture_output=True, text=True, env=cli_env(isolated_cache), timeout=120)
        elapsed = time.monotonic() - started
        assert proc.returncode != 0 and "insufficient_quota" in proc.stderr and "quota" in proc.stderr
        assert server.request_count < 100 and elapsed < 20, (server.request_count, elapsed)
    assert not (tmp_path / "run" / "summary.json").exists()


def test_rate_limit_headers_narrow_concurrency_before_any_429(tmp_path):
    data, media = official_data(tmp_path)
    # 10 requests a minute on a clock that runs 60x fast: a bucket of 10, refilled at 10 a second
    with StrictOpenAI(rpm=10, clock=lambda: time.monotonic() * 60, latency_s=0.05) as server:
        result = run(options(server, tmp_path, data, media, judge="openai:gpt-4o-2024-08-06", judge_concurrency=16))
    assert result.exit_code == 0 and result.summary["judge_errors"]["n"] == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    concurrency = manifest["judges"]["openai:gpt-4o-2024-08-06"]["request_shape"]["concurrency"]
    assert concurrency["start"] == 16 and concurrency["lowest"] < 10  # x-ratelimit-remaining-requests read


def test_429s_are_waited_out_and_halve_concurrency(tmp_path):
    data, media = official_data(tmp_path, copies=2)
    with StrictOpenAI(max_concurrency=4, latency_s=0.2) as server:  # a fifth request in flight gets a 429
        result = run(options(server, tmp_path, data, media, judge="openai:gpt-4o-2024-08-06", judge_concurrency=16))
    assert result.exit_code == 0 and result.summary["judge_errors"]["n"] == 0
    assert server.error_counts.get("rate_limit_exceeded", 0) >= 1
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    concurrency = manifest["judges"]["openai:gpt-4o-2024-08-06"]["request_shape"]["concurrency"]
    assert concurrency["rate_limited_replies"] >= 1 and concurrency["lowest"] <= 8


def test_alias_answered_by_two_snapshots_warns_and_is_counted(tmp_path):
    data, media = official_data(tmp_path)
    with StrictOpenAI(aliases={"gpt-4o": ["gpt-4o-2024-08-06", "gpt-4o-2024-11-20"]}) as server:
        result = run(options(server, tmp_path, data, media, judge="openai:gpt-4o"))
    served = result.summary["served_models"]["judge"]["openai:gpt-4o"]
    assert served == {"gpt-4o-2024-08-06": 8, "gpt-4o-2024-11-20": 8}
    assert any("2 different snapshots" in m for m in result.messages)
    task = result.summary["tasks"]["anycapeval_image_content"]
    assert set(task["served_judge"]) == {"gpt-4o-2024-08-06", "gpt-4o-2024-11-20"}


def test_truncated_answer_is_retried_once_with_twice_the_budget_then_named(tmp_path):
    data, media = official_data(tmp_path)
    long_answer = json.dumps({"score": 3, "reason": "x" * 400})  # ~100 tokens
    with StrictOpenAI(lambda body: long_answer if body.get("max_tokens", 0) < 200 else None) as server:
        result = run(options(server, tmp_path, data, media, tasks="anycapeval_image_style",
                             judge="openai:gpt-4o-2024-08-06", judge_params={"max_tokens": 40}))
        budgets = sorted({b["max_tokens"] for b in server.requests})
    assert budgets == [40, 80]
    rows = [json.loads(line) for line in (tmp_path / "run" / "judgments.jsonl").read_text().splitlines()]
    assert all(r["status"] == "judge_error" and "truncated" in r["error"] and r["finish_reason"] == "length"
               for r in rows)
    assert result.exit_code == 3
    with StrictOpenAI(lambda body: long_answer if body.get("max_tokens", 0) < 60 else None) as server:
        result = run(options(server, tmp_path, data, media, tasks="anycapeval_image_style",
                             judge="openai:gpt-4o-2024-08-06", judge_params={"max_tokens": 40},
                             output=tmp_path / "run2"))
    assert result.exit_code == 0 and result.summary["judge_errors"]["n"] == 0  # 80 tokens were enough


def test_azure_classic_and_v1_endpoints(tmp_path, monkeypatch):
    data, media = official_data(tmp_path)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-test-key")
    with StrictOpenAI(deployments={"judge-dep": "gpt-4o-2024-08-06"}) as server:
        result = run(options(server, tmp_path, data, media, judge="azure:judge-dep",
                             judge_base_url=server.azure_endpoint, judge_params={"api_version": "2024-10-21"}))
        classic = server.records
    assert result.exit_code == 0 and result.summary["judge_errors"]["n"] == 0
    assert all(r.path == "/openai/deployments/judge-dep/chat/completions" and r.query.get("api-version") in
               ("2024-10-21", ["2024-10-21"]) and r.headers.get("api-key") == "azure-test-key" for r in classic)
    assert result.summary["served_models"]["judge"]["azure:judge-dep"] == {"gpt-4o-2024-08-06": 16}

    monkeypatch.setenv("OPENAI_API_KEY", "azure-test-key")
    with StrictOpenAI(deployments={"judge-dep": "gpt-4o-2024-08-06"}) as server:
        result = run(options(server, tmp_path, data, media, judge="openai:judge-dep",
                             judge_base_url=server.azure_v1_base_url, output=tmp_path / "v1"))
        v1 = server.records
    assert result.exit_code == 0 and result.summary["judge_errors"]["n"] == 0
    assert all(r.path == "/openai/v1/chat/completions" for r in v1)


def test_retry_headers_are_read_as_the_sdk_reads_them():
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime
    from types import SimpleNamespace

    from anycapeval.retry import retry_after_s, server_says_retry

    def error(headers):
        return SimpleNamespace(response=SimpleNamespace(headers=headers))

    assert retry_after_s(error({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_after_s(error({"retry-after": "2"})) == 2.0
    date = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=6), usegmt=True)
    assert 3 <= retry_after_s(error({"retry-after": date})) <= 6
    assert retry_after_s(error({"retry-after": "3600"})) == 30.0  # capped
    assert retry_after_s(error({})) is None and retry_after_s(error({"retry-after": "soon"})) is None
    assert server_says_retry(error({"x-should-retry": "false"})) is False
    assert server_says_retry(error({"x-should-retry": "true"})) is True
    assert server_says_retry(error({})) is None


def test_x_should_retry_false_is_obeyed(tmp_path):
    from loopback_server import LoopbackServer, Reply

    data, media = official_data(tmp_path)
    refusal = Reply(status=503, content="maintenance", headers={"x-should-retry": "false"})
    with LoopbackServer(lambda body: refusal) as server:
        with pytest.raises(ChatFatalError, match="first 5 requests all failed with: HTTP 503: maintenance"):
            run(options(server, tmp_path, data, media, judge="openai:gpt-4o-2024-08-06", judge_concurrency=1))
        assert server.request_count == 5  # one request per item: a 503 is otherwise retried
