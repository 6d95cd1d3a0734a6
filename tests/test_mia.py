"""MIA-Bench: reading judge answers, scoring arithmetic, the three protocols end to end on a loopback server."""

import json
import re
import subprocess
import sys

import pytest
from conftest import SHARED_DATA, cli_env
from loopback_server import LoopbackServer
from PIL import Image

from anycapeval.judges.parse import JudgeAnswerError
from anycapeval.readers.mia import load_mia_items
from anycapeval.registry import all_tasks
from anycapeval.scorers.mia import parse_mia

W3 = [4, 3, 3]


def js(components, total, **extra):
    return json.dumps({"components": components, "total": total, **extra})


GOOD = [
    # (answer, weights, expected scores)
    (js([{"component": 1, "score": 4, "max": 4}, {"component": 2, "score": 2, "max": 3},
         {"component": 3, "score": 0, "max": 3}], 6, max_total=10), W3, [4, 2, 0]),
    ("```json\n" + js([4, 3, 3], 10) + "\n```", W3, [4, 3, 3]),  # fenced, bare numbers
    ("Here is my grading.\n" + js([{"score": "1.5"}, {"score": 3}, {"score": 3}], 7.5) + "\nHope it helps.",
     W3, [1.5, 3, 3]),  # prose around, half points as a string
    ("score of component 1: 4/4, score of component 2: 0/3, score of component 3: 3/3, total score: 7/10. "
     "The response describes the scene but uses three sentences.", W3, [4, 0, 3]),  # the official text form
    ("Component 1: 2/4\nComponent 2: 3/3\nComponent 3: 1/3\nTotal: 6/10\n\nReasons: component 1: 2/4 because "
     "it misses the dog.", W3, [2, 3, 1]),  # a grade repeated in the explanation, unchanged
    ("score of component 1: 4/4, score of component 2: 2/2, score of component 3: 1/2, total score: 7/8.",
     [4, 2, 2], [4, 2, 1]),  # item 241: the weights sum to 8, and so does the stated maximum
    (js([{"component": 1, "score": 4}, {"component": 2, "score": 4}], 8, max_total=10), [4, 4], [4, 4]),  # item 247
    (js([{"component": 2, "score": 1}, {"component": 1, "score": 5}], 6), [5, 5], [5, 1]),  # numbered out of order
]

BAD = [
    (js([4, 3, 2], 10), W3, "not the sum"),  # wrong total
    (js([5, 3, 2], 10), W3, "outside 0..4"),  # above its weight
    (js([{"component": 1, "score": 4, "max": 5}, 3, 3], 10), W3, "out of 5"),  # graded against the wrong weight
    (js([4, 3], 7), W3, "missing [3]"),  # a missing component
    (js([4, 3, 3, 1], 11), W3, "unexpected [4]"),  # an extra component
    ("score of component 1: 4/4, score of component 3: 3/3, total score: 7/10", W3, "missing [2]"),
    ("score of component 1: 4/4, score of component 2: 3/3, score of component 3: 3/3, total score: 9/10",
     W3, "not the sum"),
    ("score of component 1: 4/4, score of component 2: 3/3, score of component 3: 3/3", W3, "no total"),
    ("component 1: 4/4, component 2: 1/3, component 3: 3/3, total: 8/10. On reflection component 2: 2/3.",
     W3, "two different grades"),
    ("The response follows the instruction well. I would give it 9 out of 10.", W3, "no JSON"),
    (js([{"component": 1, "score": -1}, 3, 3], 5), W3, "outside"),
    (js([{"component": 1, "score": "most"}, 3, 3], 6), W3, "expected a number"),
    (js([4, 2, 2], 8, max_total=9), [4, 2, 2], "out of 9"),
    (js([{"component": 1, "score": 4}, {"component": 1, "score": 3}, 3], 10), W3, "graded twice"),
]


@pytest.mark.parametrize("raw,weights,expected", GOOD)
def test_valid_answers_parse(raw, weights, expected):
    assert parse_mia(raw, weights) == pytest.approx(expected)


@pytest.mark.parametrize("raw,weights,message", BAD)
def test_invalid_answers_are_errors(raw, weights, message):
    with pytest.raises(JudgeAnswerError, match=re.escape(message)):
        parse_mia(raw, weights)


# -- end to end ---------------------------------------------------------------------------------------

ITEMS = [
    {"image": "http://images.invalid/photos/red_square.png", "instruction": "Describe the image in two sentences "
     "with a simile.", "type": "basic", "num_of_component": 3, "components": ["Describe the image",
     "in two sentences", "with a simile"], "component_weight": [4, 3, 3],
     "component_type": ["describe", "length_limit", "linguistics"]},
    {"image": "https://images.invalid/img?id=7&s=1", "image_name": "blue_circle.png", "instruction": "Describe the "
     "shape and mention its colour.", "type": "intermediate", "num_of_component": 2, "components": [
     "Describe the shape", "mention its colour"], "component_weight": [5, 5],
     "component_type": ["describe", "mention"]},
    {"image": "http://images.invalid/a/b/green.png", "instruction": "Describe it, mention the background and the "
     "border.", "type": "advanced", "num_of_component": 3, "components": ["Describe it", "mention the background",
     "mention the border"], "component_weight": [4, 2, 2], "component_type": ["describe", "mention", "mention"]},
]


def user_parts(body):
    """The user turn as content parts (text-only turns are sent as a plain string)."""
    content = body["messages"][0]["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def grade(body):
    """Full points for component 1, one point for every other; JSON for most snapshots, the official
    text form for the lmms-eval one."""
    text = next(p["text"] for p in user_parts(body) if p["type"] == "text")
    weights = [float(w) for w in re.findall(r"worth ([\d.]+) points", text)]
    scores = [weights[0]] + [1.0] * (len(weights) - 1)
    if body["model"] == "gpt-4o-2024-11-20":
        parts = [f"score of component {i}: {s:g}/{w:g}" for i, (s, w) in enumerate(zip(scores, weights), 1)]
        return ", ".join(parts) + f", total score: {sum(scores):g}/10. The first part is done well."
    return js([{"component": i, "score": s, "max": w} for i, (s, w) in enumerate(zip(scores, weights), 1)],
              sum(scores), max_total=sum(weights))


def test_three_protocols_end_to_end_on_loopback(tmp_path, isolated_cache):
    data, media = tmp_path / "mia", tmp_path / "images"
    data.mkdir()
    media.mkdir()
    (data / "instruction_benchmark_all.json").write_text(json.dumps(ITEMS))
    for name, colour in (("red_square.png", "red"), ("blue_circle.png", "blue")):  # green.png is missing
        Image.new("RGB", (32, 24), colour).save(media / name)
    preds = tmp_path / "preds.jsonl"
    lines = [{"task": t, "id": i, "caption": f"A {t} answer {i}."} for t in ("mia_bench", "mia_bench_lmms_eval",
             "mia_bench_vlmevalkit") for i in range(3)]
    preds.write_text("\n".join(json.dumps(x) for x in lines[:-1]))  # the last item of vlmevalkit has no caption
    out = tmp_path / "run"
    with LoopbackServer(grade) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "anycapeval.cli", "score", "--predictions", str(preds), "--tasks", "mia_bench_all",
             "--data-dir", str(data), "--media-dir", str(media), "--judge", "openai", "--judge-base-url",
             server.base_url, "--max-generation-error-rate", "0.2", "--output", str(out), "--cache",
             str(tmp_path / "c.db")],
            capture_output=True, text=True, env=cli_env(isolated_cache), timeout=300)
        bodies = server.requests
    assert proc.returncode == 0, proc.stderr
    assert len(bodies) == 8
    by_model = {}
    for body in bodies:
        by_model.setdefault(body["model"], []).append(sum(p["type"] == "image_url" for p in user_parts(body)))
    # AnyCap and VLMEvalKit show the image (two of three exist; the third is judged text-only), lmms-eval never
    assert sorted(by_model["gpt-4o-2024-08-06"]) == [0, 1, 1]
    assert by_model["gpt-4o-2024-11-20"] == [0, 0, 0]
    assert sorted(by_model["gpt-4o-2024-05-13"]) == [1, 1]

    summary = json.loads((out / "summary.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["judges"]) == {"openai:gpt-4o-2024-08-06", "openai:gpt-4o-2024-11-20",
                                       "openai:gpt-4o-2024-05-13"}
    anycap = summary["tasks"]["mia_bench"]
    assert anycap["judge"] == "openai:gpt-4o-2024-08-06" and anycap["judge_media_seen"] == {"image": 2, "none": 1}
    assert anycap["benchmark_protocol"] == "anycap"
    assert summary["tasks"]["mia_bench_lmms_eval"]["judge_media_seen"] == {"none": 3}
    # by hand: item totals 6/10, 6/10, 6/8 -> 60, 60, 75; describe 100; mention (1/5, 1/2, 1/2) -> 40
    for name in ("mia_bench", "mia_bench_lmms_eval"):
        task = summary["tasks"][name]
        assert task["average"]["score"]["value"] == pytest.approx(65.0)
        dims = task["dimensions"]
        assert dims["describe"]["score"]["value"] == pytest.approx(100.0)
        assert dims["mention"]["score"]["value"] == pytest.approx(40.0) and dims["mention"]["n_components"] == 3
        assert dims["length_limit"]["score"]["value"] == pytest.approx(100 / 3)
        assert list(dims)[:3] == ["describe", "mention", "length_limit"]
    vlm = summary["tasks"]["mia_bench_vlmevalkit"]
    assert vlm["average"]["n"] == 2 and vlm["average"]["n_generation_error"] == 1
    assert vlm["average"]["score"]["value"] == pytest.approx(60.0)  # the missing caption is not a zero
    assert vlm["dimensions"]["mention"]["n_generation_error"] == 1
    assert "score" in (out / "summary.md").read_text()


def test_judge_errors_are_counted_never_scored(tmp_path, isolated_cache):
    data = tmp_path / "mia"
    data.mkdir()
    (data / "instruction_benchmark_all.json").write_text(json.dumps(ITEMS))
    preds = tmp_path / "preds.jsonl"
    preds.write_text("\n".join(json.dumps({"task": "mia_bench", "id": i, "caption": "x"}) for i in range(3)))
    over = js([{"component": 1, "score": 9}], 9)  # always over its weight (and missing components)
    with LoopbackServer(lambda body: over) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "anycapeval.cli", "score", "--predictions", str(preds), "--tasks", "mia_bench",
             "--data-dir", str(data), "--judge", "openai", "--judge-base-url", server.base_url, "--judge-max-attempts",
             "2", "--output", str(tmp_path / "run"), "--cache", str(tmp_path / "c.db")],
            capture_output=True, text=True, env=cli_env(isolated_cache), timeout=300)
    assert proc.returncode == 3, proc.stderr
    task = json.loads((tmp_path / "run" / "summary.json").read_text())["tasks"]["mia_bench"]
    assert task["average"]["n"] == 0 and task["average"]["n_judge_error"] == 3
    assert task["average"]["score"]["value"] is None
    assert task["dimensions"]["mention"]["n_judge_error"] == 2


def test_bad_file_names_the_record_and_field(tmp_path):
    bad = [dict(ITEMS[0]), dict(ITEMS[1], component_weight=[5])]
    (tmp_path / "instruction_benchmark_all.json").write_text(json.dumps(bad))
    task = all_tasks()["mia_bench"]
    with pytest.raises(Exception, match=r"\[1\].*component_weight.*1 entries for 2 components"):
        load_mia_items(task, str(tmp_path), None)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "mia_bench").is_dir(), reason="shared data not present")
def test_official_file_loads_without_network():
    task = all_tasks()["mia_bench"]
    task = task.model_copy(update={"config": task.config.model_copy(update={"options": {"hf_dataset": False}})})
    items = load_mia_items(task, str(SHARED_DATA / "mia_bench"), None)
    assert len(items) == task.config.expected_items == 400
    odd = {i.id: sum(i.extra["weights"]) for i in items if sum(i.extra["weights"]) != 10}
    assert odd == {"241": 8, "247": 8}
    assert all(i.media_path is None for i in items)
    assert sum(not i.media.startswith("http") for i in items) == 1  # item 193: a URL without a scheme
    assert {t for i in items for t in i.extra["types"]} == set(task.config.dimensions)


# -- images through `datasets` ------------------------------------------------------------------------

def _hub_copy(tmp_path, items, colours=("red", "blue", "green")):
    """A dataset in lmms-lab/MIA-Bench's schema, built locally and laid out as the Hub repository is."""
    import datasets

    images = [Image.new("RGB", (20 + i, 10), c) for i, c in enumerate(colours)]
    rows = {"image": images, "instruction": [r["instruction"] for r in items],
            "type": [r["type"] for r in items], "num_of_component": [r["num_of_component"] for r in items],
            "components": [r["components"] for r in items], "component_weight": [r["component_weight"] for r in items],
            "component_type": [r["component_type"] for r in items]}
    ds = datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())
    folder = tmp_path / "MIA-Bench"
    (folder / "data").mkdir(parents=True)
    ds.to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    return folder


def _mia_dir(tmp_path, items=ITEMS):
    data = tmp_path / "mia"
    data.mkdir()
    (data / "instruction_benchmark_all.json").write_text(json.dumps(items))
    return data


def test_images_come_from_the_dataset_and_are_cached(tmp_path, monkeypatch):
    import datasets

    hub = _hub_copy(tmp_path, ITEMS)
    real_load = datasets.load_dataset
    calls = []

    def from_local_copy(path, revision=None, split=None, **kw):  # the Hub, served from the local copy
        calls.append((path, revision, split))
        return real_load(str(hub), split=split, **kw)

    monkeypatch.setattr(datasets, "load_dataset", from_local_copy)
    task = all_tasks()["mia_bench"]
    pinned = {**task.config.options, "hf_dataset": "lmms-lab/MIA-Bench", "hf_revision": "0123abcd" * 5}
    task = task.model_copy(update={"config": task.config.model_copy(update={"options": pinned})})
    items = load_mia_items(task, str(_mia_dir(tmp_path)), None)
    assert calls == [("lmms-lab/MIA-Bench", "0123abcd" * 5, "test")]
    assert [Image.open(i.media_path).size for i in items] == [(20, 10), (21, 10), (22, 10)]  # row i = item i
    assert all(f"lmms-lab_MIA-Bench@{'0123abcd' * 5}" in str(i.media_path) for i in items)
    again = load_mia_items(task, str(tmp_path / "mia"), None)  # cached: the dataset is not loaded again
    assert len(calls) == 1 and [i.media_path for i in again] == [i.media_path for i in items]


def test_a_local_copy_through_the_environment_and_media_dir_first(tmp_path, monkeypatch):
    hub = _hub_copy(tmp_path, ITEMS)
    monkeypatch.setenv("ANYCAPEVAL_MIA_DATASET", str(hub))
    media = tmp_path / "images"
    media.mkdir()
    Image.new("RGB", (5, 5), "white").save(media / "red_square.png")
    items = load_mia_items(all_tasks()["mia_bench"], str(_mia_dir(tmp_path)), str(media))
    assert items[0].media_path == media / "red_square.png"
    assert [Image.open(i.media_path).size for i in items[1:]] == [(21, 10), (22, 10)]


def test_dataset_rows_in_another_order_stop_the_run(tmp_path, monkeypatch):
    hub = _hub_copy(tmp_path, [ITEMS[0], ITEMS[2], ITEMS[1]])
    monkeypatch.setenv("ANYCAPEVAL_MIA_DATASET", str(hub))
    with pytest.raises(Exception, match=r"row 1 is not item 1 .*pin the revision"):
        load_mia_items(all_tasks()["mia_bench"], str(_mia_dir(tmp_path)), None)


def test_no_network_and_no_copy_leaves_the_images_missing(tmp_path):
    items = load_mia_items(all_tasks()["mia_bench"], str(_mia_dir(tmp_path)), None)  # HF_*_OFFLINE=1 here
    assert [i.media_path for i in items] == [None, None, None]
