"""The `openai:` captioner against a real HTTP server on 127.0.0.1: what each modality sends, caching,
resume after a kill, retries, and bad media failing only its item."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import cli_env
from loopback_server import LoopbackServer, Reply, Script
from media_fixtures import TASKS, break_media, official_layout

from anycapeval.chat import ChatFatalError
from anycapeval.data import load_items
from anycapeval.registry import resolve_tasks
from anycapeval.runner import RunOptions, run
from anycapeval.systems.base import SystemBase
from anycapeval.types import AnyCapError

SECRET = "sk-test-SECRET-generation-0123456789"
CAPTION = "A small scene with a few shapes and colours in it, described plainly for the test."


def caption_responder(body):
    return CAPTION


def options(server, tmp_path, tasks="demo_image_content,demo_video_style,demo_audio_content", **kw):
    base = dict(model="openai:captioner-1", tasks=tasks, judge="fake:perfect", cache_path=tmp_path / "cache.sqlite",
                output=tmp_path / "run", model_args={"base_url": server.base_url, "frames": "4", "max_side": "64",
                                                     "retry_base_s": "0.01"})
    base.update(kw)
    return RunOptions(**base)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_modality_is_sent_as_the_server_expects(tmp_path):
    tasks = resolve_tasks("demo_image_content,demo_video_style,demo_audio_content")
    instructions = {i.instruction for t in tasks for i in load_items(t)}
    with LoopbackServer(caption_responder) as server:
        result = run(options(server, tmp_path))
    assert result.exit_code == 0
    assert server.request_count == 24
    by_kind = {"image": [], "video": [], "audio": []}
    for body in server.requests:
        assert body["model"] == "captioner-1" and body["temperature"] == 0 and body["seed"] == 1234
        parts = body["messages"][0]["content"]
        images = [p for p in parts if p["type"] == "image_url"]
        audio = [p for p in parts if p["type"] == "input_audio"]
        kind = "audio" if audio else "video" if len(images) > 1 else "image"
        by_kind[kind].append((parts, images, audio))
        assert parts[-1]["type"] == "text" and parts[-1]["text"] in instructions  # the item's instruction, last
    assert {k: len(v) for k, v in by_kind.items()} == {"image": 8, "video": 8, "audio": 8}
    for _, images, _ in by_kind["image"]:
        assert len(images) == 1 and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    for parts, images, _ in by_kind["video"]:
        assert len(images) == 4  # frames=4
        stamps = [float(s.rstrip("s.")) for s in parts[0]["text"].split("taken at ")[1].split(", ")]
        assert stamps == sorted(stamps) and len(set(stamps)) == 4 and stamps[0] == 0.0
        assert [p["type"] for p in parts] == ["text", *["image_url"] * 4, "text"]  # frames in order, then the ask
    for _, _, audio in by_kind["audio"]:
        assert audio[0]["input_audio"]["format"] == "wav" and len(audio[0]["input_audio"]["data"]) > 1000
    preds = rows(tmp_path / "run" / "predictions.jsonl")
    assert all(p["caption"] == CAPTION and p["status"] == "ok" for p in preds)
    assert all(p["usage"]["prompt_tokens"] > 0 and p["usage"]["completion_tokens"] > 0 for p in preds)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["model_args"]["frames"] == "4" and manifest["system_settings"]["frames"] == 4
    assert result.summary["model_args"]["max_side"] == "64"


def test_rerun_makes_zero_generation_requests_and_the_key_is_never_written(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with LoopbackServer(caption_responder) as server:
        first = run(options(server, tmp_path, tasks="demo_image_content,demo_audio_content"))
        assert server.request_count == 16
        second = run(options(server, tmp_path, tasks="demo_image_content,demo_audio_content", output=tmp_path / "r2"))
        assert server.request_count == 16  # everything came from the cache
        # another setting that changes the captions is another cache entry
        changed = options(server, tmp_path, tasks="demo_image_content", output=tmp_path / "r3")
        changed.model_args = {**changed.model_args, "max_tokens": "77"}
        run(changed)
        assert server.request_count == 24 and server.requests[-1]["max_tokens"] == 77
    assert first.summary["tasks"] == second.summary["tasks"]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_secrets_in_model_args_are_refused(tmp_path):
    with pytest.raises(AnyCapError, match="looks like a secret"):
        from anycapeval.systems import parse_model_args

        parse_model_args("base_url=http://x,api_key=sk-123")
    assert not (tmp_path / "run").exists()


def _cli(server, out, cache):
    return [sys.executable, "-m", "anycapeval.cli", "run", "--model", "openai:captioner-1", "--model-args",
            f"base_url={server.base_url},concurrency=2", "--tasks", "demo_image_content,demo_audio_style",
            "--judge", "fake:perfect", "--output", str(out), "--cache", str(cache)]


def test_killed_generation_resumes_without_regenerating(tmp_path, isolated_cache):
    env = cli_env(isolated_cache)
    with LoopbackServer(caption_responder, latency_s=0.1) as server:
        proc = subprocess.Popen(_cli(server, tmp_path / "run", tmp_path / "c.db"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while server.request_count < 8 and time.time() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = server.request_count
        assert 8 <= before < 16
        assert not (tmp_path / "run" / "summary.json").exists()
        resumed = subprocess.run(_cli(server, tmp_path / "run", tmp_path / "c.db"), env=env, capture_output=True,
                                 text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        # finished captions are not asked again: only the unfinished ones, plus at most the 2 in flight at the kill
        assert 16 - before <= server.request_count - before <= 16 - before + 2
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert all(t["average"]["n"] == 8 for t in summary["tasks"].values())


def test_retries_then_success_and_fatal_errors_stop(tmp_path, isolated_cache):
    steps = [Reply(status=429, content="slow down"), Reply(status=503, content="busy"), Reply(content="   ")]
    with LoopbackServer(Script(steps, then=caption_responder)) as server:
        result = run(options(server, tmp_path, tasks="demo_image_content",
                             model_args={"base_url": server.base_url, "concurrency": "1", "retry_base_s": "0.01"}))
        assert server.request_count == 8 + len(steps)
    assert result.summary["tasks"]["demo_image_content"]["average"]["n"] == 8
    with LoopbackServer(lambda body: Reply(status=401, content="bad key")) as server:
        proc = subprocess.run([sys.executable, "-m", "anycapeval.cli", "run", "--model", "openai:captioner-1",
                               "--model-args", f"base_url={server.base_url}", "--tasks", "demo_image_content",
                               "--judge", "fake:perfect", "--output", str(tmp_path / "fatal")],
                              capture_output=True, text=True, env=cli_env(isolated_cache), timeout=300)
    assert proc.returncode == 2 and "bad key" in proc.stderr and "base_url" in proc.stderr, proc.stderr
    assert not (tmp_path / "fatal" / "summary.json").exists()


def test_always_failing_server_stops_the_run_with_its_words(tmp_path):
    with LoopbackServer(lambda body: Reply(status=500, content="model is not loaded")) as server:
        with pytest.raises(ChatFatalError, match="first 5 requests all failed with: HTTP 500: model is not loaded"):
            run(options(server, tmp_path, tasks="demo_image_content",
                        model_args={"base_url": server.base_url, "max_attempts": "2", "retry_base_s": "0.01"}))
        assert server.request_count <= 8  # stopped at the fifth failure, not 8 items x 2 attempts
    assert not (tmp_path / "run" / "summary.json").exists()


def test_failing_items_are_generation_errors_not_scores_and_exit_nonzero(tmp_path):
    def some_fail(body):
        text = json.dumps(body["messages"])
        return Reply(status=500, content="overloaded") if "house" in text else caption_responder(body)

    with LoopbackServer(some_fail) as server:
        result = run(options(server, tmp_path, tasks="demo_image_content",
                             model_args={"base_url": server.base_url, "max_attempts": "2", "retry_base_s": "0.01"}))
    average = result.summary["tasks"]["demo_image_content"]["average"]
    failed = [p for p in rows(tmp_path / "run" / "predictions.jsonl") if p["status"] != "ok"]
    assert failed and average["n_generation_error"] == len(failed) and average["n"] == 8 - len(failed)
    assert all("after 2 attempts: HTTP 500: overloaded" in p["error"] for p in failed)
    assert result.exit_code == 4 and result.summary["generation_errors"]["n"] == len(failed)
    assert any("generations failed" in m for m in result.messages)


def test_bad_media_fails_only_its_items_and_names_the_file(tmp_path, isolated_cache):
    data, media = official_layout(tmp_path)
    broken = break_media(media)
    with LoopbackServer(caption_responder) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "anycapeval.cli", "run", "--model", "openai:captioner-1", "--model-args",
             f"base_url={server.base_url},frames=3", "--tasks", TASKS, "--data-dir", str(data),
             "--media-dir", f"image={media / 'image'}", "--media-dir", str(media), "--judge", "fake:perfect",
             "--output", str(tmp_path / "run"), "--cache", str(tmp_path / "c.db")],
            capture_output=True, text=True, env=cli_env(isolated_cache), timeout=300)
        assert proc.returncode == 4, proc.stderr  # generation errors over --max-generation-error-rate 0
        assert "6 of 24 generations failed" in proc.stderr
        assert server.request_count == 24 - 6  # the six items whose media is bad never reach the server
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for task in TASKS.split(","):
        assert summary["tasks"][task]["average"]["n"] == 6
        assert summary["tasks"][task]["average"]["n_generation_error"] == 2
    errors = {p["task"]: p["error"] for p in rows(tmp_path / "run" / "predictions.jsonl") if p["error"]}
    assert "sunny_house.png" in errors["anycapeval_image_content"] and "not found" in errors["anycapeval_image_content"]
    assert str(broken["video"]) in errors["anycapeval_video_style"] and "not a readable video" in \
        errors["anycapeval_video_style"]
    assert str(broken["audio"]) in errors["anycapeval_audio_content"] and "not readable audio" in \
        errors["anycapeval_audio_content"]


class _Refiner(SystemBase):
    """Stands in for anycapeval.acm.system.ACMSystem (built elsewhere) to test the acm: wiring only."""

    cacheable = True

    def __init__(self, checkpoint, base, args):
        self.spec, self.base, self.base_spec, self.args = f"acm:{checkpoint}", base, base.spec, args

    async def generate(self, item):
        from dataclasses import replace

        prediction = await self.base.generate(item)
        return replace(prediction, system=self.spec, caption=prediction.caption + " (refined)")


def test_acm_needs_a_base_and_records_it(tmp_path, monkeypatch):
    import types

    from anycapeval.systems import make_system

    with pytest.raises(AnyCapError, match="pass --base SYSTEM"):
        make_system("acm:ckpt", [], {})
    with pytest.raises(AnyCapError, match="--base is only for acm"):
        make_system("reference", [], {}, base="reference")
    module = types.ModuleType("anycapeval.acm.system")
    module.ACMSystem = _Refiner
    monkeypatch.setitem(sys.modules, "anycapeval.acm.system", module)
    with LoopbackServer(caption_responder) as server:
        result = run(options(server, tmp_path, tasks="demo_image_content", model="acm:ckpt-1", base="openai:base-vlm",
                             model_args={"steps": "1"}, base_args={"base_url": server.base_url}))
        assert server.request_count == 8 and server.requests[0]["model"] == "base-vlm"
    assert result.summary["base"] == "openai:base-vlm" and result.summary["system"] == "acm:ckpt-1"
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["base"] == "openai:base-vlm" and manifest["model_args"] == {"steps": "1"}
    assert manifest["base_args"] == {"base_url": server.base_url} and manifest["base_settings"]["model"] == "base-vlm"
    assert all(p["caption"] == CAPTION + " (refined)" for p in rows(tmp_path / "run" / "predictions.jsonl"))
