"""The OpenAI Batch API path (anycapeval/batch.py) against the loopback Files + Batches stand-in
(tests/batch_openai.py), through the real openai SDK: judging with --judge-batch (split to the limits,
killed while polling and resumed, expired / cancelled / failed batches, failed lines retried online or in
batches, the batch price) and captioning with an `openai:` system's batch=true."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from batch_openai import BatchOpenAI
from conftest import cli_env
from loopback_server import Reply
from test_providers import official_data

from anycapeval import batch
from anycapeval.batch_table import BatchTable
from anycapeval.runner import Runner, RunOptions, run
from anycapeval.store import Cache

JUDGE = "openai:gpt-4o-2024-08-06"


def answer(body: dict) -> str | None:
    """A schema-valid judge answer that differs per prompt (so the scores are not all alike)."""
    fmt = (body.get("response_format") or {}).get("json_schema")
    if fmt is None:
        return None
    text = json.dumps(body["messages"], sort_keys=True)
    props = fmt["schema"]["properties"]
    out: dict = {}
    for name, prop in props.items():
        digest = int(hashlib.sha256(f"{text}|{name}".encode()).hexdigest(), 16)
        out[name] = prop["enum"][digest % len(prop["enum"])] if "enum" in prop else "because"
    return json.dumps(out)


def options(server: BatchOpenAI, tmp_path: Path, data: Path, media: Path, name: str = "run", **kw) -> RunOptions:
    base = dict(model="reference", tasks="anycapeval_image_content,anycapeval_image_style", data_dir=str(data),
                media_dir=str(media), judge=JUDGE, judge_base_url=server.base_url,
                cache_path=tmp_path / f"{name}.sqlite", output=tmp_path / name, judge_batch=True,
                judge_options={"retry_base_s": 0.01})
    base.update(kw)
    return RunOptions(**base)


def rows(run_dir: Path, name: str = "judgments.jsonl") -> list[dict]:
    return [json.loads(line) for line in (run_dir / name).read_text().splitlines()]


def without_cost(summary: dict) -> dict:
    out = {k: v for k, v in summary.items() if k != "cost"}
    out["tasks"] = {name: {k: v for k, v in task.items() if k != "cost"} for name, task in summary["tasks"].items()}
    return out


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setenv("ANYCAPEVAL_BATCH_POLL_S", "0.01")


def test_split_to_the_limits_and_the_same_scores_as_online(tmp_path, monkeypatch):
    data, media = official_data(tmp_path)
    with BatchOpenAI(answer) as server:
        online = run(options(server, tmp_path, data, media, "online", judge_batch=False))
        assert online.exit_code == 0 and server.created == []
        online_requests = server.request_count
        monkeypatch.setattr(batch, "MAX_REQUESTS", 3)  # 8 content + 8 style requests: 3 + 3 + 2 per role
        server.max_batch_requests = 3  # and the stand-in refuses a bigger batch, as the real API does
        by_count = run(options(server, tmp_path, data, media, "by_count"))
        assert [b["request_counts"]["total"] for b in server.created] == [3, 3, 2, 3, 3, 2]
        sizes = [len(json.dumps(line, ensure_ascii=False).encode()) + 1
                 for b in server.created for line in server.input_lines(b["id"])]
        limit = 2 * max(sizes)  # files of a few small lines, or one or two large ones (the style lines hold images)
        monkeypatch.setattr(batch, "MAX_REQUESTS", 50_000)
        monkeypatch.setattr(batch, "MAX_FILE_BYTES", limit)
        server.max_batch_requests, server.max_file_bytes = 50_000, limit  # a bigger file is refused on upload
        by_bytes = run(options(server, tmp_path, data, media, "by_bytes"))
        split = server.created[6:]
        assert len(split) > 2 and sum(b["request_counts"]["total"] for b in split) == 16
        assert all(server.files[b["input_file_id"]]["bytes"] <= limit for b in split)
        assert all(b["status"] == "completed" for b in server.created)
        assert server.request_count == online_requests  # the batch runs asked nothing online
    for result in (by_count, by_bytes):
        assert result.exit_code == 0 and without_cost(result.summary) == without_cost(online.summary)
        assert all(r["batch_id"].startswith("batch_") and r["served_model"] == "gpt-4o-2024-08-06"
                   and r["system_fingerprint"].startswith("fp_") and r["finish_reason"] == "stop"
                   and r["usage"]["prompt_tokens"] > 0 for r in rows(result.run_dir))
        assert result.summary["cost"]["judges"][JUDGE]["batch_requests"] == 16
        assert result.summary["cost"]["usd"] == pytest.approx(online.summary["cost"]["usd"] / 2)
    # the batch lines are the online request bodies
    online_bodies = sorted(json.dumps(b, sort_keys=True) for b in server.requests)
    batch_bodies = sorted(json.dumps(line["body"], sort_keys=True) for b in server.created[:6]
                          for line in server.input_lines(b["id"]))
    assert batch_bodies == online_bodies


@pytest.mark.parametrize("ending", ["expired", "cancelled"])
def test_a_batch_that_ends_early_keeps_its_finished_lines_and_the_rest_are_errors(tmp_path, ending):
    data, media = official_data(tmp_path)
    ends = {"expire_after": 3} if ending == "expired" else {"cancel_after": 3}
    with BatchOpenAI(answer, lines_per_poll=1, **ends) as server:
        first = run(options(server, tmp_path, data, media, tasks="anycapeval_image_content"))
        [ended] = server.created
        assert ended["status"] == ending and ended["output_file_id"] and ended["error_file_id"]
        judged = rows(first.run_dir)
        ok = [r for r in judged if r["status"] == "ok"]
        failed = [r for r in judged if r["status"] == "judge_error"]
        assert len(ok) == 3 and len(failed) == 5 and server.request_count == 0
        assert all(f"batch {ended['id']} {ending}; re-run to resubmit" in r["error"] for r in failed)
        scores = rows(first.run_dir, "scores.jsonl")
        assert sum(s["status"] == "judge_error" for s in scores) == 5  # never a score
        assert first.exit_code == 3 and first.summary["judge_errors"]["n"] == 5
        assert first.summary["tasks"]["anycapeval_image_content"]["average"]["kpd"]["value"] is not None

        server.expire_after = server.cancel_after = None
        again = run(options(server, tmp_path, data, media, tasks="anycapeval_image_content"))
        assert again.exit_code == 0 and len(server.created) == 2
        resubmitted = {line["custom_id"] for line in server.input_lines(server.created[1]["id"])}
        assert resubmitted == {r["cache_key"] for r in failed}  # only those


def test_a_failed_batch_names_the_servers_reasons_and_nothing_is_scored(tmp_path):
    data, media = official_data(tmp_path)
    with BatchOpenAI(answer, max_batch_requests=5) as server:  # the client's limit (50,000) is not the server's
        result = run(options(server, tmp_path, data, media, tasks="anycapeval_image_content"))
        [failed] = server.created
    assert failed["status"] == "failed" and failed["errors"]["data"][0]["code"] == "too_many_requests"
    assert result.exit_code == 3 and result.summary["judge_errors"]["n"] == 8
    assert all(f"batch {failed['id']} failed; re-run to resubmit" in r["error"] for r in rows(result.run_dir))
    assert any("at most 5" in m for m in result.messages)


def flaky(keys_failing: set[str], how: dict[str, Reply | str]):
    """line_reply: the first time a chosen line runs it fails as `how` says; afterwards it is answered."""
    def reply(line: dict) -> Reply | str | None:
        key = line["custom_id"]
        if key in keys_failing:
            keys_failing.discard(key)
            return how[key]
        return None
    return reply


@pytest.mark.parametrize("retry", ["online", "batch"])
def test_failed_lines_are_retried_online_or_in_a_follow_up_batch(tmp_path, retry):
    data, media = official_data(tmp_path)
    with BatchOpenAI(answer) as server:
        dry = run(options(server, tmp_path, data, media, "dry", tasks="anycapeval_image_content"))
        keys = [r["cache_key"] for r in rows(dry.run_dir)][:3]
        how = {keys[0]: Reply(status=500, content="The server had an error"),
               keys[1]: Reply(status=429, content="Rate limit reached"), keys[2]: "not json at all"}
        server.line_reply = flaky(set(keys), how)
        result = run(options(server, tmp_path, data, media, tasks="anycapeval_image_content",
                             judge_batch_retry=retry))
        followups = server.created[2:]
        online_calls = server.request_count
    assert result.exit_code == 0 and result.summary["judge_errors"]["n"] == 0
    by_key = {r["cache_key"]: r for r in rows(result.run_dir)}
    if retry == "online":
        assert online_calls == 3 and followups == []
        assert all(by_key[k].get("batch_id") is None and "judged online after its batch line failed" in
                   by_key[k]["notes"][0] for k in keys)
        assert "HTTP 500: The server had an error" in by_key[keys[0]]["notes"][0]
        assert "invalid answer" in by_key[keys[2]]["notes"][0]
        assert result.summary["cost"]["judges"][JUDGE]["batch_requests"] == 5
    else:
        assert online_calls == 0 and len(followups) == 1
        assert {line["custom_id"] for line in server.input_lines(followups[0]["id"])} == set(keys)
        assert all(by_key[k]["batch_id"] == followups[0]["id"] for k in keys)
        assert result.summary["cost"]["judges"][JUDGE]["batch_requests"] == 8
    assert without_cost(result.summary) == without_cost(dry.summary)


def test_a_refused_line_is_not_resent_in_a_batch(tmp_path):
    data, media = official_data(tmp_path)
    with BatchOpenAI(answer, line_reply=lambda line: Reply(status=400, content="Invalid 'messages'")) as server:
        result = run(options(server, tmp_path, data, media, tasks="anycapeval_image_content",
                             judge_batch_retry="batch"))
        assert len(server.created) == 1 and server.request_count == 0
    assert result.exit_code == 3 and all("HTTP 400: Invalid 'messages'" in r["error"] for r in rows(result.run_dir))


def test_unreadable_media_is_that_items_error_and_the_rest_go_in_the_batch(tmp_path):
    data, media = official_data(tmp_path)
    (media / "image" / "night_city.png").write_bytes(b"not a png")
    with BatchOpenAI(answer) as server:
        result = run(options(server, tmp_path, data, media, tasks="anycapeval_image_style"))
        [sent] = server.created
        lines = server.input_lines(sent["id"])
    judged = rows(result.run_dir)
    broken = [r for r in judged if r["status"] != "ok"]
    assert broken and all("cannot read media" in r["error"] and "night_city.png" in r["error"] for r in broken)
    assert len(lines) == len(judged) - len(broken) and result.exit_code == 3
    assert all(r["media_sent"] == "image" for r in judged if r["status"] == "ok")
    assert all(line["body"]["messages"][0]["content"][1]["type"] == "image_url" for line in lines)


def test_a_stopped_style_run_resumes_its_batch_and_records_what_the_judge_saw(tmp_path):
    data, media = official_data(tmp_path)
    with BatchOpenAI(answer, hold=True) as server:
        opts = options(server, tmp_path, data, media, tasks="anycapeval_image_style")
        with pytest.raises(TimeoutError):  # stopped while polling (the subprocess test kills with SIGKILL)
            asyncio.run(asyncio.wait_for(Runner(opts).run(), timeout=3))
        assert len(server.created) == 1 and server.created[0]["status"] == "in_progress"
        server.hold = False
        result = run(opts)
        assert len(server.created) == 1 and server.created[0]["status"] == "completed"
    assert result.exit_code == 0
    assert all(r["media_sent"] == "image" and r["batch_id"] == server.created[0]["id"] for r in rows(result.run_dir))


def test_openai_system_generates_through_batches_at_the_batch_price(tmp_path):
    data, media = official_data(tmp_path)
    with BatchOpenAI() as server:
        opts = dict(model="openai:gpt-4o-mini", tasks="anycapeval_image_content", judge="fake:perfect",
                    judge_batch=False, judge_base_url=None, judge_options={},
                    model_args={"base_url": server.base_url, "batch": "true", "retry_base_s": "0.01"})
        result = run(options(server, tmp_path, data, media, **opts))
        assert result.exit_code == 0 and server.request_count == 0 and len(server.created) == 1
        predictions = rows(result.run_dir, "predictions.jsonl")
        assert all(p["status"] == "ok" and p["caption"] == "ok" and p["batch_id"] == server.created[0]["id"]
                   and p["served_model"] == "gpt-4o-mini-2024-07-18" for p in predictions)
        bodies = [line["body"] for line in server.input_lines(server.created[0]["id"])]
        assert all(b["model"] == "gpt-4o-mini" and b["max_tokens"] == 512 and b["seed"] == 1234
                   and b["messages"][0]["content"][0]["type"] == "image_url" for b in bodies)
        cost = result.summary["cost"]["systems"]["openai:gpt-4o-mini"]
        assert cost["batch_requests"] == 8
        assert cost["usd"] == pytest.approx((cost["prompt_tokens"] * 0.075 + cost["completion_tokens"] * 0.3) / 1e6)
        again = run(options(server, tmp_path, data, media, name="run", **{**opts, "output": tmp_path / "again"}))
        assert again.exit_code == 0 and len(server.created) == 1  # cached: nothing submitted again
        assert again.summary["cost"] == result.summary["cost"]  # still priced as the batch it came from


def test_the_stand_in_refuses_what_the_batch_api_refuses(tmp_path):
    with BatchOpenAI() as server:
        client = openai.OpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0)

        def upload(lines: list[dict], purpose: str = "batch", name: str = "in.jsonl"):
            return client.files.create(file=(name, "".join(json.dumps(x) + "\n" for x in lines).encode()),
                                       purpose=purpose)  # type: ignore[arg-type]

        def line(custom_id: str, model: str = "gpt-4o-mini", url: str = "/v1/chat/completions") -> dict:
            return {"custom_id": custom_id, "method": "POST", "url": url,
                    "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]}}

        with pytest.raises(openai.BadRequestError, match="Must be .jsonl"):
            upload([line("a")], name="in.json")
        good = upload([line("a")])
        with pytest.raises(openai.BadRequestError, match="completion_window"):
            client.batches.create(input_file_id=good.id, endpoint="/v1/chat/completions",
                                  completion_window="1h")  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError, match="endpoint"):
            client.batches.create(input_file_id=good.id, endpoint="/v1/embeddings", completion_window="24h")
        other = upload([line("a")], purpose="user_data")
        with pytest.raises(openai.BadRequestError, match="purpose 'batch'"):
            client.batches.create(input_file_id=other.id, endpoint="/v1/chat/completions", completion_window="24h")
        for lines, code in (([line("a"), line("a")], "duplicate_custom_id"),
                            ([line("a"), line("b", model="gpt-4o")], "mismatched_model"),
                            ([line("a"), line("b", url="/v1/completions")], "mismatched_url")):
            created = client.batches.create(input_file_id=upload(lines).id, endpoint="/v1/chat/completions",
                                            completion_window="24h")
            assert created.status == "validating"
            polled = client.batches.retrieve(created.id)
            assert polled.status == "failed" and polled.errors and polled.errors.data
            assert polled.errors.data[0].code == code and polled.errors.data[0].line == 2
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_nope")


def test_killed_while_polling_342_judgments_resume_without_resubmitting(tmp_path, isolated_cache):
    """A real `anycapeval run --judge-batch` process is SIGKILLed while it polls; the same command again
    polls the same batch, and the run's summary.json equals the online run's (cost: half)."""
    data, _ = official_data(tmp_path, copies=43)  # 8 x 43 = 344 items; --limit 342
    with BatchOpenAI(answer, hold=True) as server:
        base = [sys.executable, "-m", "anycapeval.cli", "run", "--model", "reference", "--tasks",
                "anycapeval_image_content", "--data-dir", str(data), "--limit", "342", "--judge", JUDGE,
                "--judge-base-url", server.base_url]
        env = cli_env(isolated_cache, ANYCAPEVAL_BATCH_POLL_S="0.2")
        online = subprocess.run([*base, "--output", str(tmp_path / "online"), "--cache", str(tmp_path / "o.db")],
                                capture_output=True, text=True, env=env, timeout=300)
        assert online.returncode == 0, online.stderr[-2000:]
        assert server.request_count == 342 and server.created == []

        command = [*base, "--judge-batch", "--output", str(tmp_path / "batch"), "--cache", str(tmp_path / "b.db")]
        started = time.monotonic()
        with open(tmp_path / "killed.log", "w") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                while server.polls() < 3:  # submitted, and polling a batch the stand-in holds in_progress
                    assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
                    assert time.monotonic() - started < 120
                    time.sleep(0.05)
            finally:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert len(server.created) == 1 and server.created[0]["status"] == "in_progress"
        assert not (tmp_path / "batch" / "summary.json").exists()
        cache = Cache(tmp_path / "b.db")
        [stored] = BatchTable(cache).rows()
        cache.close()
        assert stored["id"] == server.created[0]["id"] and stored["n_keys"] == 342 and not stored["merged"]

        server.hold = False
        resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert "resuming 1 batch" in resumed.stderr
        assert len(server.created) == 1 and server.created[0]["status"] == "completed"  # one submission in all
        assert server.batch_log.count(("POST", "/v1/files")) == server.batch_log.count(("POST", "/v1/batches")) == 1
        assert server.request_count == 342  # nothing asked online by either batch process
    online_summary = json.loads((tmp_path / "online" / "summary.json").read_text())
    batch_summary = json.loads((tmp_path / "batch" / "summary.json").read_text())
    assert without_cost(batch_summary) == without_cost(online_summary)
    judge_cost = batch_summary["cost"]["judges"][JUDGE]
    assert judge_cost["batch_requests"] == judge_cost["requests"] == 342
    assert judge_cost["usd"] == pytest.approx(online_summary["cost"]["judges"][JUDGE]["usd"] / 2)
    assert batch_summary["cost"]["usd"] == pytest.approx(online_summary["cost"]["usd"] / 2)
