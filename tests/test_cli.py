"""The command line as a user runs it: real subprocesses."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATA, cli_env

from anycapeval import release


def cli(args, cache, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "anycapeval.cli", *args], capture_output=True, text=True,
                          env=cli_env(cache), cwd=cwd, timeout=timeout)


def test_demo_run_with_offline_judge_prints_tables(tmp_path, isolated_cache):
    result = cli(["run", "--model", "reference", "--tasks", "demo", "--output", str(tmp_path / "run")],
                 isolated_cache, tmp_path)
    assert result.returncode == 0, result.stderr
    for task in ("demo_image_content", "demo_video_style", "demo_audio_content"):
        assert task in result.stdout
    assert "IPos" in result.stdout and "Brf" in result.stdout and "OFFLINE APPROXIMATION" in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert len(summary["tasks"]) == 6
    for task in summary["tasks"].values():
        assert task["judge_is_approximation"] is True
        assert task["average"]["n"] == 8 and task["average"]["n_judge_error"] == 0
        for dim in task["dimensions"].values():
            for value in dim.values():
                if isinstance(value, dict):
                    assert value["value"] is not None and value["ci"][0] <= value["value"] <= value["ci"][1]
    assert summary["tasks"]["demo_image_style"]["dimensions"]["Brf"]["style_score"]["value"] == 3.0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and "offline:minilm-v3" in manifest["judges"]
    assert "OFFLINE APPROXIMATION" in (tmp_path / "run" / "summary.md").read_text()


def test_tasks_and_help(tmp_path, isolated_cache):
    result = cli(["tasks"], isolated_cache, tmp_path)
    assert result.returncode == 0
    for name in ("anycapeval_video_content", "demo_audio_style", "anycapeval_image:", "demo:"):
        assert name in result.stdout
    assert "gpt-4o-mini" in result.stdout
    help_text = cli(["run", "--help"], isolated_cache, tmp_path).stdout
    assert "--judge-media" in help_text and "--protocol" in help_text


def test_self_judge_is_refused(tmp_path, isolated_cache):
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": 0, "caption": "A house."}\n')
    from anycapeval.runner import RunOptions, run
    from anycapeval.types import AnyCapError

    with pytest.raises(AnyCapError, match="allow-self-judge"):
        run(RunOptions(model="openai:gpt-x", tasks="demo_image_content", judge="openai:gpt-x",
                       judge_base_url="http://127.0.0.1:9/v1", output=tmp_path / "r"))


def test_data_fetch_uses_the_hub_into_the_cache_pinned(tmp_path, monkeypatch):
    calls = {}
    heads = iter(["a" * 40, "b" * 40])  # the Hub's main moves on between the two fetches

    def fake_snapshot_download(repo_id, repo_type, local_dir, revision=None):
        calls.update(repo_id=repo_id, repo_type=repo_type, local_dir=local_dir, revision=revision)
        Path(local_dir, "image").mkdir(parents=True, exist_ok=True)
        Path(local_dir, "image", "anycapeval_image_ref.jsonl").write_text("{}\n")
        return local_dir

    import types

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info",
                        lambda self, repo: types.SimpleNamespace(sha=next(heads)))
    path = release.fetch()
    assert calls["repo_id"] == "qishisuren/AnyCapEval" and calls["repo_type"] == "dataset"
    assert calls["revision"] == "a" * 40 and release.fetched_revision(path) == "a" * 40
    from anycapeval.readers.anycapeval import resolve_data_dir
    from anycapeval.registry import all_tasks
    from anycapeval.runner import data_revision

    assert resolve_data_dir(None) == path  # the fetched copy becomes the default --data-dir
    release.fetch()  # a later fetch keeps the recorded commit
    assert calls["revision"] == "a" * 40
    release.fetch(revision="c" * 40)
    assert release.fetched_revision(path) == "c" * 40
    assert data_revision(all_tasks()["anycapeval_image_content"], None) == "c" * 40  # what manifests record


def test_data_fetch_failure_says_what_to_do(monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    from anycapeval.types import AnyCapError

    with pytest.raises(AnyCapError, match="--data-dir"):
        release.fetch()


@pytest.mark.skipif(not (SHARED_DATA / "anycapeval").is_dir(), reason="../shared/data/anycapeval not present")
def test_data_verify_on_the_shared_copy(tmp_path, isolated_cache):
    result = cli(["data", "verify", "--data-dir", str(SHARED_DATA / "anycapeval")], isolated_cache, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = release.verify(SHARED_DATA / "anycapeval")
    counts = {r["check"]: r["detail"] for r in rows}
    assert counts["anycapeval_video_content: items"].startswith("340")
    assert counts["anycapeval_image_style: items"].startswith("223")
    assert "27" in counts["anycapeval_audio_content: key points"]
    assert sum(r["check"].startswith("checksum") and r["detail"].startswith("matches") for r in rows) == 10
    # a changed byte is caught
    copy = tmp_path / "copy"
    shutil.copytree(SHARED_DATA / "anycapeval", copy)
    path = copy / "image" / "anycapeval_image_ref_style.jsonl"
    path.write_text(path.read_text().replace("a", "b", 1))
    assert not all(r["ok"] for r in release.verify(copy))
