"""The `hf:` captioner on tiny models built from configs (random weights, nothing downloaded): image and
video (as timestamped frames) through a LLaVA-style model, audio through a Qwen2-Audio-style model,
end to end through the CLI; caching, bad media and model-type checks."""

import json
import subprocess
import sys

import pytest
import tiny_models
from conftest import cli_env
from media_fixtures import break_media, official_layout

from anycapeval.data import load_items
from anycapeval.registry import resolve_tasks
from anycapeval.runner import RunOptions, run
from anycapeval.systems import make_system
from anycapeval.systems.hf_system import HFSystem
from anycapeval.types import AnyCapError

pytestmark = pytest.mark.slow
ARGS = "max_new_tokens=6,batch_size=4"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"vision": tiny_models.build_llava(root / "llava"), "audio": tiny_models.build_qwen_audio(root / "audio")}


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_captions_demo_image_video_and_audio(models, tmp_path, isolated_cache):
    for kind, tasks in (("vision", "demo_image_content,demo_video_content"), ("audio", "demo_audio_style")):
        out = tmp_path / kind
        proc = subprocess.run(
            [sys.executable, "-m", "anycapeval.cli", "run", "--model", f"hf:{models[kind]}", "--model-args",
             f"{ARGS},device=cpu,dtype=float32", "--tasks", tasks, "--judge", "fake:perfect", "--output", str(out),
             "--cache", str(tmp_path / "c.db")], capture_output=True, text=True, env=cli_env(isolated_cache),
            timeout=600)
        assert proc.returncode == 0, proc.stderr
        preds = rows(out / "predictions.jsonl")
        assert len(preds) == 8 * len(tasks.split(","))
        assert all(p["status"] == "ok" and p["caption"].strip() for p in preds)
        assert all(p["usage"]["completion_tokens"] == 6 and p["usage"]["prompt_tokens"] > 0 for p in preds)
        manifest = json.loads((out / "manifest.json").read_text())
        expected = "AutoModelForImageTextToText" if kind == "vision" else "AutoModelForMultimodalLM"
        assert manifest["system_settings"]["model_class"] == expected
        assert manifest["model_args"] == {"max_new_tokens": "6", "batch_size": "4", "device": "cpu",
                                          "dtype": "float32"}
        assert "transformers" in manifest["versions"]


def test_video_goes_as_timestamped_frames_without_a_video_input(models):
    system = HFSystem(str(models["vision"]), {"frames": "5"})
    _, processor, _ = system._load()
    item = load_items(resolve_tasks("demo_video_content")[0])[0]
    content, media = system._prepare(item, processor)
    assert [p["type"] for p in content] == ["text", *["image"] * 5, "text"] and len(media["images"]) == 5
    assert "5 frames in order, taken at 0.0s" in content[0]["text"] and content[-1]["text"] == item.instruction


def test_a_vision_only_model_on_an_audio_task_stops_with_what_to_do(models):
    system = HFSystem(str(models["vision"]), {})
    _, processor, _ = system._load()
    item = load_items(resolve_tasks("demo_audio_style")[0])[0]
    with pytest.raises(AnyCapError, match="has no audio input .* leave the audio tasks out of --tasks"):
        system._prepare(item, processor)


def test_an_audio_only_model_on_image_and_video_tasks_stops_with_what_to_do(models):
    system = HFSystem(str(models["audio"]), {})
    _, processor, _ = system._load()
    for task in ("demo_image_content", "demo_video_style"):
        item = load_items(resolve_tasks(task)[0])[0]
        with pytest.raises(AnyCapError, match=f"has no image input .* cannot caption the {item.modality} task "
                           f"{task}; leave the image and video tasks out of --tasks"):
            system._prepare(item, processor)


def test_cached_rerun_never_loads_the_model(models, tmp_path, monkeypatch):
    opts = dict(model=f"hf:{models['vision']}", tasks="demo_image_content", judge="fake:perfect",
                cache_path=tmp_path / "c.db", model_args={"max_new_tokens": "5"})
    first = run(RunOptions(**opts, output=tmp_path / "a"))

    def no_load(self):
        raise AssertionError("the model was loaded although every caption is cached")

    monkeypatch.setattr(HFSystem, "_load", no_load)
    second = run(RunOptions(**opts, output=tmp_path / "b"))
    assert first.summary["tasks"] == second.summary["tasks"]
    assert rows(tmp_path / "a" / "predictions.jsonl") == rows(tmp_path / "b" / "predictions.jsonl")


def test_bad_media_fails_only_its_items(models, tmp_path):
    data, media = official_layout(tmp_path)
    broken = break_media(media)
    for kind, tasks in (("vision", "anycapeval_image_content,anycapeval_video_style"),
                        ("audio", "anycapeval_audio_content")):
        result = run(RunOptions(model=f"hf:{models[kind]}", tasks=tasks, data_dir=str(data), media_dir=str(media),
                                judge="fake:perfect", cache_path=tmp_path / "c.db", output=tmp_path / kind,
                                model_args={"max_new_tokens": "4", "batch_size": "3"}))
        for task in tasks.split(","):
            average = result.summary["tasks"][task]["average"]
            assert average["n"] == 6 and average["n_generation_error"] == 2
        errors = [p["error"] for p in rows(tmp_path / kind / "predictions.jsonl") if p["error"]]
        assert len(errors) == 2 * len(tasks.split(","))
    video_errors = [p["error"] for p in rows(tmp_path / "vision" / "predictions.jsonl") if "ball_roll" in p["error"]]
    assert video_errors and all(str(broken["video"]) in e for e in video_errors)


def test_text_only_models_and_bad_args_are_refused(tmp_path):
    from transformers import LlamaConfig

    LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(
        tmp_path / "llama")
    with pytest.raises(AnyCapError, match="model type 'llama' is neither"):
        make_system(f"hf:{tmp_path / 'llama'}", [], {})
    with pytest.raises(AnyCapError, match="cannot read the model config"):
        make_system(f"hf:{tmp_path / 'absent'}", [], {})
    with pytest.raises(AnyCapError, match="unknown --model-args colour"):
        make_system(f"hf:{tmp_path / 'llama'}", [], {}, model_args={"colour": "red"})
    with pytest.raises(AnyCapError, match="dtype='float8'"):
        make_system(f"hf:{tmp_path / 'llama'}", [], {}, model_args={"dtype": "float8"})


def test_native_video_input_where_the_processor_has_one(tmp_path):
    pytest.importorskip("torchvision")  # transformers' video processors need it
    path = tiny_models.build_qwen_vl(tmp_path / "qwen")
    system = HFSystem(str(path), {"frames": "4", "max_new_tokens": "4"})
    _, processor, _ = system._load()
    item = load_items(resolve_tasks("demo_video_style")[0])[0]
    content, media = system._prepare(item, processor)
    assert [p["type"] for p in content] == ["video", "text"] and len(media["videos"][0]) == 4
    prediction = system._generate_sync([item])[0]
    assert prediction.status == "ok" and prediction.caption
