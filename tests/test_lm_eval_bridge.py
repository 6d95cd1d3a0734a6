"""The lm-eval bridge: lm_eval (a real subprocess, hf-multimodal on a tiny random LLaVA built from a config)
generates captions for our task YAMLs, and its --log_samples file goes straight to `anycapeval score`."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import cli_env
from tiny_models import build_llava

from anycapeval.lmeval import task_folder

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None,
                                reason="lm-eval not installed (pip install -e '.[lmeval]')")


def _utils():
    spec = importlib.util.spec_from_file_location("anycapeval_lmeval_utils", task_folder() / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_image_and_audio_task_has_a_yaml():
    names = {p.stem for p in task_folder().glob("*.yaml")}
    for prefix in ("anycapeval", "demo"):
        for modality in ("image", "audio"):
            assert {f"{prefix}_{modality}_content", f"{prefix}_{modality}_style"} <= names
    assert "doc_to_audio" in (task_folder() / "demo_audio_style.yaml").read_text()


def test_docs_are_our_items_with_their_media():
    utils = _utils()
    docs = utils.load_docs(anycapeval_task="demo_audio_content", version=1.0)["test"]
    assert len(docs) == 8 and docs[0]["anycapeval_task"] == "demo_audio_content" and docs[0]["instruction"]
    (audio,) = utils.doc_to_audio(docs[0])
    assert audio["sampling_rate"] == 16_000 and audio["array"].dtype == np.float32 and audio["array"].size > 1000
    images = utils.load_docs(anycapeval_task="demo_image_style")["test"]
    (image,) = utils.doc_to_image(images[0])
    assert image.mode == "RGB"
    with pytest.raises(FileNotFoundError, match="media_dir"):
        utils.doc_to_image({**images[0], "media_path": ""})


def test_lm_eval_generates_and_anycapeval_scores(tmp_path, isolated_cache):
    model = build_llava(tmp_path / "llava")
    env = cli_env(isolated_cache, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "hf-multimodal", "--model_args",
         f"pretrained={model},dtype=float32", "--device", "cpu", "--batch_size", "2", "--include_path",
         str(task_folder()), "--tasks", "demo_image_content", "--limit", "3", "--predict_only", "--log_samples",
         "--output_path", str(tmp_path / "lm"), "--gen_kwargs", "max_gen_toks=12"],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (samples,) = (tmp_path / "lm").rglob("samples_demo_image_content_*.jsonl")
    records = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(records) == 3 and all(r["resps"][0][0].strip() for r in records)

    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "anycapeval.cli", "score", "--predictions", str(samples), "--tasks",
         "demo_image_content", "--limit", "3", "--judge", "fake:perfect", "--output", str(out), "--cache",
         str(tmp_path / "c.db")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    task = summary["tasks"]["demo_image_content"]
    assert task["average"]["n"] == 3 and task["average"]["n_generation_error"] == 0
    assert task["average"]["keypoint_recall"]["value"] is not None
    predictions = {p["item_id"]: p["caption"] for p in map(json.loads, (out / "predictions.jsonl").read_text()
                                                           .splitlines())}
    assert predictions == {r["doc"]["id"]: r["resps"][0][0] for r in records}  # the raw generations, as written
