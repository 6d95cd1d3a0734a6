"""Importing captions other harnesses wrote. Each sample file is written here from the format's
documented schema (lm-eval / lmms-eval `--log_samples`, MIA-Bench, VidCapBench, AnyCap outputs)."""

import asyncio
import json
import subprocess
import sys

import pytest
from conftest import cli_env

from anycapeval.data import load_items
from anycapeval.registry import resolve_tasks
from anycapeval.systems.predictions import PredictionsSystem
from anycapeval.types import AnyCapError, InputError

TASKS = "demo_image_content,demo_video_style,demo_audio_style"


def items_of(tasks=TASKS):
    by_task = {t.name: load_items(t) for t in resolve_tasks(tasks)}
    return [i for v in by_task.values() for i in v], {n: {i.id for i in v} for n, v in by_task.items()}


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def system(path, tasks=TASKS):
    items, ids = items_of(tasks)
    return PredictionsSystem(path, items, ids), items


def captions(sys_, items):
    async def go():
        return [await sys_.generate(i) for i in items]
    return {(p.task, p.item_id): (p.status, p.caption) for p in asyncio.run(go())}


def official_record(item):
    """The AnyCapEval record an lm-eval task would have iterated as `doc`."""
    return {"id": int(item.id), item.modality: item.media, "restriction": [item.instruction_type,
                                                                          item.length_constraint],
            "conversations": [{"from": "human", "value": item.instruction}, {"from": "gpt", "value": item.reference}]}


def test_lm_eval_log_samples(tmp_path):
    items, _ = items_of("demo_image_content")
    records = []
    for n, item in enumerate(items):
        # generate_until samples: arguments = [[context, gen_kwargs]], resps = [[text]], filtered_resps = [text];
        # one record per filter, each carrying the same raw response
        for flt in ("none", "strip"):
            records.append({"doc_id": n, "doc": official_record(item), "target": item.reference,
                            "arguments": [[item.instruction, {"until": ["\n\n"], "max_gen_toks": 256}]],
                            "resps": [[f" lm-eval caption {n} "]], "filtered_resps": [f"lm-eval caption {n}"],
                            "filter": flt, "metrics": ["bypass"], "doc_hash": "d", "prompt_hash": "p",
                            "target_hash": "t", "bypass": 999})
    sys_, items = system(write(tmp_path / "samples_demo_2025-01-01T00-00-00.jsonl", records), "demo_image_content")
    assert sys_.format == "lm-eval / lmms-eval log_samples"
    got = captions(sys_, items)
    assert got[("demo_image_content", "3")] == ("ok", " lm-eval caption 3 ")
    assert all(status == "ok" for status, _ in got.values())
    # the same sample twice under one filter is a duplicate
    write(tmp_path / "dup.jsonl", records + [records[0]])
    with pytest.raises(InputError, match=r"dup.jsonl:17: field 'id': duplicate id '0'"):
        system(tmp_path / "dup.jsonl", "demo_image_content")


def test_lmms_eval_log_samples_without_image_keys_and_its_json_logs(tmp_path):
    items, _ = items_of("demo_image_content,demo_video_style")
    records = []
    for n, item in enumerate(items):
        doc = {k: v for k, v in official_record(item).items() if "image" not in k}  # lmms-eval drops image keys
        records.append({"doc_id": n, "doc": doc, "target": item.reference,
                        "arguments": [item.instruction, {"max_new_tokens": 128}, n, "anycap", "test"],
                        "resps": [[f"lmms caption {item.task} {item.id}"]],
                        "filtered_resps": [f"lmms caption {item.task} {item.id}"],
                        "doc_hash": "d", "prompt_hash": "p", "target_hash": "t"})
    for n, record in enumerate(records):  # ids repeat across tasks here (0-7 and 100-107 do not overlap)
        assert record["doc"]["id"] == int(items[n].id)
    path = tmp_path / "captioner_anycap.json"
    path.write_text(json.dumps({"args": {"model": "x"}, "logs": records}))
    sys_, items = system(path, "demo_image_content,demo_video_style")
    got = captions(sys_, items)
    assert got[("demo_video_style", "104")] == ("ok", "lmms caption demo_video_style 104")
    assert len(got) == 16 and all(s == "ok" for s, _ in got.values())


def test_mia_bench_output_matches_by_image_url_and_prompt(tmp_path):
    items, _ = items_of("demo_image_content")
    records = [{"question_id": f"https://example.org/mia/{i.media}", "prompt": i.instruction,
                "text": f"mia answer {i.id}"} for i in items]
    sys_, items = system(write(tmp_path / "mia_out.jsonl", records), "demo_image_content")
    assert sys_.format == "MIA-Bench output"
    got = captions(sys_, items)
    assert got[("demo_image_content", "2")] == ("ok", "mia answer 2")  # sunny_house.png holds items 0 and 2
    assert got[("demo_image_content", "0")] == ("ok", "mia answer 0")
    # without a telling prompt, a shared image is ambiguous
    records[0]["prompt"] = "Something else entirely."
    with pytest.raises(InputError, match=r"mia_out.jsonl:1: field 'question_id': the media .*sunny_house.png.* "
                                         r"matches 2 items"):
        system(write(tmp_path / "mia_out.jsonl", records), "demo_image_content")


def test_vidcapbench_caption_file_matches_by_video_name(tmp_path):
    items, _ = items_of("demo_video_style")
    records = [{"question": i.instruction, "video_dir": i.media, "model_generation": f"vid {i.id}"} for i in items]
    sys_, items = system(write(tmp_path / "vidcap.jsonl", records), "demo_video_style")
    assert sys_.format == "VidCapBench captions"
    assert captions(sys_, items)[("demo_video_style", "105")] == ("ok", "vid 105")
    bad = [{"question": "q", "video_dir": "clip_0001.mp4", "model_generation": "x"}]
    with pytest.raises(InputError, match=r"vidcap_bad.jsonl:1: field 'video_dir': no item .* 'clip_0001.mp4'"):
        system(write(tmp_path / "vidcap_bad.jsonl", bad), "demo_video_style")


def test_anycap_audio_outputs_match_by_stem(tmp_path):
    unique = {"clicks": "100", "silence_tone": "103", "three_beeps": "104", "rising_sweep": "105"}
    records = [{"audio_path": f"/data/audiocaps/{stem}.flac", "model_response": f"audio {stem}"} for stem in unique]
    sys_, items = system(write(tmp_path / "audio_out.jsonl", records), "demo_audio_style")
    assert sys_.format == "AnyCap audio captioning"
    got = captions(sys_, items)
    assert got[("demo_audio_style", "103")] == ("ok", "audio silence_tone")  # .flac vs .wav: matched on the stem
    assert got[("demo_audio_style", "101")][0] == "generation_error"  # not in the file: that item's error
    records.append({"audio_path": "/x/chord.wav", "model_response": "which chord item?"})
    with pytest.raises(InputError, match="audio_out.jsonl:5: field 'audio_path'.*matches 2 items"):
        system(write(tmp_path / "audio_out.jsonl", records), "demo_audio_style")


def test_anycap_generation_file_and_this_projects_run_output(tmp_path):
    items, _ = items_of("demo_video_style")
    records = [{**official_record(i), "model_response_style": [f"video caption {i.id}"]} for i in items]
    sys_, items = system(write(tmp_path / "gen_style.jsonl", records), "demo_video_style")
    assert sys_.format == "AnyCap generation file"
    assert captions(sys_, items)[("demo_video_style", "107")] == ("ok", "video caption 107")
    # a run's predictions.jsonl imports back; failed generations in it stay failures
    rows = [{"task": i.task, "item_id": i.id, "system": "openai:x", "caption": f"c{i.id}", "status": "ok",
             "error": "", "usage": {}, "task_version": "1.0"} for i in items]
    rows[1].update(caption="", status="generation_error", error="media file x: not found")
    sys_, items = system(write(tmp_path / "predictions.jsonl", rows), "demo_video_style")
    got = captions(sys_, items)
    assert got[("demo_video_style", "100")] == ("ok", "c100") and got[("demo_video_style", "101")][0] == \
        "generation_error"


@pytest.mark.parametrize("records,needle", [
    ([{"foo": 1, "bar": 2}], r"x.jsonl:1: field '<record>': unknown predictions format \(fields: bar, foo\). "
                             r"Known formats: lm-eval / lmms-eval log_samples"),
    ([{"doc_id": 0, "resps": [["x"]]}], r"x.jsonl:1: field 'doc': missing"),
    ([{"doc_id": 0, "doc": {"id": 0}, "resps": [["a", "b"]]}], r"x.jsonl:1: field 'resps': a list caption must hold"),
    ([{"doc_id": 0, "doc": {"id": 0}, "resps": [["ok"]]}, {"doc_id": 1, "doc": {"foo": 1}, "resps": [["x"]]}],
     r"x.jsonl:2: field 'doc.id': missing"),
    ([{"question_id": "a.jpg", "prompt": "p", "text": ""}], r"x.jsonl:1: field 'text': empty caption"),
    ([{"video_dir": "a.mp4", "model_generation": 3}], r"x.jsonl:1: field 'model_generation': expected a string"),
])
def test_bad_records_name_file_line_and_field(tmp_path, records, needle):
    with pytest.raises(AnyCapError, match=needle):
        system(write(tmp_path / "x.jsonl", records), "demo_image_content")


def test_score_command_reads_lm_eval_samples(tmp_path, isolated_cache):
    items, _ = items_of("demo_image_content")
    records = [{"doc_id": n, "doc": official_record(i), "arguments": [[i.instruction, {}]], "target": i.reference,
                "resps": [[i.reference]], "filtered_resps": [i.reference], "filter": "none"}
               for n, i in enumerate(items)]
    path = write(tmp_path / "samples_anycap.jsonl", records)
    proc = subprocess.run([sys.executable, "-m", "anycapeval.cli", "score", "--predictions", str(path), "--tasks",
                           "demo_image_content", "--judge", "fake:perfect", "--output", str(tmp_path / "run")],
                          capture_output=True, text=True, env=cli_env(isolated_cache), timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["tasks"]["demo_image_content"]["average"]["n"] == 8
    assert summary["tasks"]["demo_image_content"]["average"]["length_compliance"]["value"] == 1.0
