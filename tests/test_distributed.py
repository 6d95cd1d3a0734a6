"""Data-parallel generation under torchrun / accelerate launch (anycapeval/distributed.py): two CPU
processes (gloo) caption their slices of each task with a tiny model built from a config, rank 0
gathers, judges and writes one run directory whose summary.json and predictions.jsonl equal a single
process's. Plus the slicing, the launch variables, the device each rank takes, and --shard refused."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys

import pytest
import tiny_models
from conftest import cli_env

from anycapeval import distributed
from anycapeval.distributed import Launch, rank_slice
from anycapeval.runner import RunOptions, run
from anycapeval.types import AnyCapError

TASKS = "demo_image_content,demo_video_content"  # 8 items each


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launched(launcher: list[str], args: list[str], cache, out, timeout: int = 300) -> subprocess.CompletedProcess:
    """`anycapeval run ARGS` started by `launcher` (nothing for one process). Every process runs one
    thread (torchrun's own default for its workers), so the one-process baseline does the same
    floating-point work per batch as each rank."""
    proc = subprocess.run([sys.executable, *launcher, "-m", "anycapeval", "run", *args, "--output", str(out),
                           "--cache", str(cache)], capture_output=True, text=True, timeout=timeout,
                          env=cli_env(cache.parent, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def torchrun() -> list[str]:
    return ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
            "--master_port", str(free_port())]


def same_run(one, two) -> None:
    assert json.loads((two / "summary.json").read_text()) == json.loads((one / "summary.json").read_text())
    assert (two / "predictions.jsonl").read_text() == (one / "predictions.jsonl").read_text()
    assert (two / "scores.jsonl").read_text() == (one / "scores.jsonl").read_text()
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert "distributed" not in json.loads((one / "manifest.json").read_text())


def generations(cache) -> int:
    db = sqlite3.connect(str(cache))
    try:
        return int(db.execute("SELECT count(*) FROM entries WHERE kind = 'generation'").fetchone()[0])
    finally:
        db.close()


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    return tiny_models.build_llava(tmp_path_factory.mktemp("tiny") / "llava")


# batch_size=3 over 8 items: batches {0,1,2} {3,4,5} {6,7}; rank 0 takes the first batch and rank 1 the
# other two (rank_slice cuts at batch boundaries), so each rank decodes exactly the batches the single
# process decodes: same items, same padding, same greedy tokens. Blocks cut at 4 would put items 3 and
# 4..7 into batches the single process never forms; a padding-sensitive decoder could then differ.
HF_ARGS = ["--model-args", "max_new_tokens=6,batch_size=3,device=cpu,dtype=float32", "--tasks", TASKS,
           "--judge", "fake:perfect"]


@pytest.fixture(scope="module")
def one_process(llava, tmp_path_factory):
    """The single-process run every launch is compared with. Each run has its own cache, so each
    generates every caption itself (a shared cache would hand a later run the earlier one's)."""
    root = tmp_path_factory.mktemp("one")
    launched([], ["--model", f"hf:{llava}", *HF_ARGS], root / "cache" / "cache.sqlite", root / "run")
    return root / "run"


@pytest.mark.slow
def test_two_ranks_write_the_one_process_run(llava, one_process, tmp_path):
    args = ["--model", f"hf:{llava}", *HF_ARGS]
    proc = launched(torchrun(), args, tmp_path / "c2" / "cache.sqlite", tmp_path / "two")
    same_run(one_process, tmp_path / "two")
    assert generations(tmp_path / "c2" / "cache.sqlite") == 16  # both ranks cached their captions in one SQLite file
    assert proc.stderr.count("results in") == 1  # only rank 0 reports
    captions = [json.loads(line)["caption"] for line in (one_process / "predictions.jsonl").open()]
    assert len(set(captions)) > 1  # the captions differ between items, so equal files say something

    # accelerate launch starts the same workers (its --cpu flag alone would start one process, so
    # --multi_gpu asks for the torchrun-style launcher; on a machine without GPUs the ranks use gloo)
    launched(["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())],
             args, tmp_path / "c3" / "cache.sqlite", tmp_path / "three")
    same_run(one_process, tmp_path / "three")


@pytest.mark.slow
def test_two_nodes_each_with_its_own_cache(llava, one_process, tmp_path):
    """The README's multi-node command, as two one-process "nodes" on this machine (static rendezvous
    at --rdzv-endpoint): node 0 writes the run; each node caches only its own block of captions."""
    args = ["--model", f"hf:{llava}", *HF_ARGS]
    port = free_port()
    procs = []
    for node in (1, 0):
        cache = tmp_path / f"node{node}" / "cache.sqlite"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(node),
             "--nproc_per_node", "1", "--rdzv-endpoint", f"127.0.0.1:{port}", "-m", "anycapeval", "run", *args,
             "--output", str(tmp_path / "two"), "--cache", str(cache)], stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, env=cli_env(cache.parent, OMP_NUM_THREADS="1")))
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-4000:]
    same_run(one_process, tmp_path / "two")
    # batches {0,1,2} {3,4,5} {6,7} of each task: node 0 has the first, node 1 the other two
    assert generations(tmp_path / "node0" / "cache.sqlite") == 2 * 3
    assert generations(tmp_path / "node1" / "cache.sqlite") == 2 * 5


@pytest.fixture(scope="module")
def acm_checkpoint(tmp_path_factory):
    """An untrained tiny ACM (tiny.yaml, random weights): a plumbing check, not a useful refiner."""
    import torch
    from anycapeval.acm.config import load_config
    from anycapeval.acm.model import ACMModel
    from anycapeval.acm.text import train_bpe

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("acm") / "ckpt"
    tokenizer = train_bpe(["A red kite flies over a green field.", "Two dogs run along the beach."] * 5, 300)
    model = ACMModel.build(load_config("tiny"), tokenizer)
    model.save_pretrained(out, processor=model.media_processor())
    tokenizer.save_pretrained(str(out))
    return out


@pytest.mark.slow
def test_two_ranks_with_acm_over_an_hf_base(llava, acm_checkpoint, tmp_path):
    # ACM hands its own batches (batch_size=3) to the base, so both models see the one-process batches
    args = ["--model", f"acm:{acm_checkpoint}", "--model-args", "batch_size=3,max_new_tokens=8,device=cpu",
            "--base", f"hf:{llava}", "--base-args", "max_new_tokens=6,device=cpu,dtype=float32",
            "--tasks", "demo_image_content", "--judge", "fake:perfect", "--max-generation-error-rate", "1"]
    launched([], args, tmp_path / "c1" / "cache.sqlite", tmp_path / "one")
    launched(torchrun(), args, tmp_path / "c2" / "cache.sqlite", tmp_path / "two")
    same_run(tmp_path / "one", tmp_path / "two")


@pytest.mark.parametrize("total,batch,world,chunk", [(8, 3, 2, 0), (8, 1, 3, 0), (5, 4, 3, 0), (0, 4, 2, 0),
                                                     (17, 4, 4, 0), (3, 8, 2, 0), (23, 4, 3, 10), (23, 4, 2, 5)])
def test_rank_slices_are_contiguous_batch_aligned_and_cover_every_item(total, batch, world, chunk):
    """Blocks are cut only where a single process's batch starts: batches of `batch` items within
    chunks of `chunk` items (the runner's CHUNK_ITEMS)."""
    slices = [rank_slice(total, batch, Launch(world, r, r), chunk) for r in range(world)]
    assert [i for start, stop in slices for i in range(start, stop)] == list(range(total))
    step = chunk or total or 1
    one_process = {s for c in range(0, total, step) for s in range(c, min(c + step, total), batch)} | {total}
    assert all(start in one_process and stop in one_process for start, stop in slices)
    assert sum(stop > start for start, stop in slices) == min(world, len(one_process) - 1)  # no rank idles needlessly


def test_launch_comes_from_the_launchers_variables():
    assert distributed.launch_from_env({}) is None
    assert distributed.launch_from_env({"WORLD_SIZE": "1", "RANK": "0"}) is None
    assert distributed.launch_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == Launch(4, 3, 1)
    with pytest.raises(AnyCapError, match="RANK"):
        distributed.launch_from_env({"WORLD_SIZE": "2"})


def test_each_rank_takes_its_own_gpu(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.local_device("cuda") == "cuda:1"
    assert distributed.local_device("cuda:0") == "cuda:0"  # an explicit index is kept
    assert distributed.local_device("cpu") == "cpu"
    assert distributed.backend_for({"device": "cpu"}) == "gloo"
    assert distributed.backend_for({}) == "gloo"  # no local model (an API system)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.local_device("cuda") == "cuda"


def test_shard_is_refused_under_a_launcher(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(AnyCapError, match="drop --shard"):
        run(RunOptions(model="reference", tasks="demo_image_content", judge="fake:perfect", shard=(1, 2),
                       output=tmp_path / "r", cache_path=tmp_path / "c.db"))
    assert not (tmp_path / "r").exists()
