"""--shard K/N and `anycapeval merge`: shard runs joined give the unsharded run's summary, exactly."""

import json
import subprocess
import sys

import pytest
from conftest import cli_env

TASKS = "demo_image_content,demo_audio_style,demo_video_content"


def cli(args, cache, timeout=300):
    return subprocess.run([sys.executable, "-m", "anycapeval.cli", *args], capture_output=True, text=True,
                          env=cli_env(cache), timeout=timeout)


def run_args(out, *extra):
    return ["run", "--model", "reference", "--tasks", TASKS, "--judge", "fake:perfect", "--output", str(out), *extra]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    cache = root / "cache"
    for args in (run_args(root / "full"), run_args(root / "s1", "--shard", "1/3"), run_args(root / "s2", "--shard",
                 "2/3"), run_args(root / "s3", "--shard", "3/3")):
        proc = cli(args, cache)
        assert proc.returncode == 0, proc.stderr
    return root, cache


def test_merged_shards_equal_the_unsharded_run(runs):
    root, cache = runs
    shard = json.loads((root / "s2" / "summary.json").read_text())
    assert shard["shard"] == "2/3" and shard["tasks"]["demo_image_content"]["average"]["n"] == 3  # items 2..4 of 8
    proc = cli(["merge", str(root / "s3"), str(root / "s1"), str(root / "s2"), "--output", str(root / "merged")], cache)
    assert proc.returncode == 0, proc.stderr
    full = json.loads((root / "full" / "summary.json").read_text())
    merged = json.loads((root / "merged" / "summary.json").read_text())
    assert merged == full  # values and bootstrap CIs
    kpd = full["tasks"]["demo_image_content"]["average"]["kpd"]
    assert kpd["ci"][0] < kpd["value"] < kpd["ci"][1]  # a real interval, so equality says something
    for name in ("scores", "predictions"):
        a = (root / "full" / f"{name}.jsonl").read_text().splitlines()
        b = (root / "merged" / f"{name}.jsonl").read_text().splitlines()
        assert a == b
    manifest = json.loads((root / "merged" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and "shard" not in manifest and len(manifest["merged_from"]) == 3


def test_merge_refuses_missing_duplicate_and_foreign_shards(runs, tmp_path):
    root, cache = runs
    proc = cli(["merge", str(root / "s1"), str(root / "s3"), "--output", str(tmp_path / "m")], cache)
    assert proc.returncode == 2 and "missing shard(s) 2/3" in proc.stderr
    proc = cli(["merge", str(root / "s1"), str(root / "s1"), str(root / "s2"), "--output", str(tmp_path / "m")], cache)
    assert proc.returncode == 2 and "given twice" in proc.stderr
    proc = cli(["merge", str(root / "full"), "--output", str(tmp_path / "m")], cache)
    assert proc.returncode == 2 and "not made with --shard" in proc.stderr
    other = tmp_path / "other"
    assert cli(run_args(other, "--shard", "2/3", "--protocol", "anycap_v1"), cache).returncode == 0
    proc = cli(["merge", str(root / "s1"), str(other), str(root / "s3"), "--output", str(tmp_path / "m")], cache)
    assert proc.returncode == 2 and "not shards of the same run" in proc.stderr and "protocol" in proc.stderr
    manifest = json.loads((root / "s2" / "manifest.json").read_text())
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("summary.json", "scores.jsonl", "predictions.jsonl", "judgments.jsonl"):
        (unfinished / name).write_text((root / "s2" / name).read_text())
    (unfinished / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    proc = cli(["merge", str(root / "s1"), str(unfinished), str(root / "s3"), "--output", str(tmp_path / "m")], cache)
    assert proc.returncode == 2 and "did not finish" in " ".join(proc.stderr.split())
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("shard,needle", [("0/2", "1 <= K <= N"), ("3/2", "1 <= K <= N"), ("x", "K/N"),
                                          ("1/9", "only 8 items")])
def test_bad_shard_arguments(tmp_path, isolated_cache, shard, needle):
    proc = cli(["run", "--model", "reference", "--tasks", "demo_image_content", "--judge", "fake:perfect",
                "--shard", shard, "--output", str(tmp_path / "r")], isolated_cache)
    assert proc.returncode == 2 and needle in proc.stderr
