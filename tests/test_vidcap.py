"""VidCapBench: metric arithmetic against hand computations, the two judge roles end to end on a loopback server."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import cli_env
from loopback_server import LoopbackServer

from anycapeval.judges.parse import JudgeAnswerError
from anycapeval.scorers import get_scorer
from anycapeval.scorers.vidcap import parse_answerer, parse_grade
from anycapeval.types import GENERATION_ERROR, JUDGE_ERROR, OK, Score

DIMS = ["aesthetics", "content", "motion", "physics"]


def score(item_id, grades, cats, length, status=OK):
    if status != OK:
        return Score("t", item_id, "all", status, metrics={"categories": cats, "sub_categories": []})
    subs = {"content": "subjects", "motion": "object motion", "physics": "common sense", "aesthetics": "lighting"}
    return Score("t", item_id, "all", OK, metrics={"grades": grades, "categories": cats, "length": length,
                                                   "sub_categories": [subs[c] for c in cats]})


def value(entry, name):
    return entry[name]["value"]


def test_metric_arithmetic_matches_hand_computation():
    scores = [
        score("x", [2, 2, 1, -1, 0], ["content", "content", "motion", "motion", "physics"], 10),
        score("y", [2, 0, -1], ["content", "aesthetics", "physics"], 20),
        score("z", [], ["content"], 0, status=JUDGE_ERROR),
        score("w", [], ["motion"], 0, status=GENERATION_ERROR),
        score("s", [], [], 0, status="skipped"),
    ]
    result = get_scorer("vidcap_qa").aggregate(scores, DIMS)
    avg = result["average"]
    # overall: A=3 B=1 C=2 D=2 over 8 questions; mean length (10 + 20) / 2 = 15
    assert value(avg, "accuracy") == pytest.approx(37.5)
    assert value(avg, "precision") == pytest.approx(100 * 4 / 6)
    assert value(avg, "coverage") == pytest.approx(75.0)
    assert value(avg, "conciseness") == pytest.approx(37.5 * 100 / 15)
    assert avg["grades"] == {"2": 3, "1": 1, "0": 2, "-1": 2} and avg["n_questions"] == 8
    assert (avg["n"], avg["n_judge_error"], avg["n_generation_error"], avg["n_skipped"]) == (2, 1, 1, 1)
    dims = result["dimensions"]
    assert list(dims) == DIMS
    content = dims["content"]  # 2, 2 (x) and 2 (y): every answer right; both captions count for the length
    assert [value(content, m) for m in ("accuracy", "precision", "coverage")] == pytest.approx([100, 100, 100])
    assert value(content, "conciseness") == pytest.approx(100 * 100 / 15)
    assert content["n"] == 2 and content["n_judge_error"] == 1
    motion = dims["motion"]  # 1, -1 (x only)
    assert [value(motion, m) for m in ("accuracy", "precision", "coverage", "conciseness")] == \
        pytest.approx([0, 50, 100, 0])
    assert motion["n_generation_error"] == 1
    physics = dims["physics"]  # 0 (x), -1 (y)
    assert [value(physics, m) for m in ("accuracy", "precision", "coverage")] == pytest.approx([0, 0, 50])
    aesthetics = dims["aesthetics"]  # a single 0: no answered question, so precision has no value
    assert value(aesthetics, "precision") is None and value(aesthetics, "coverage") == 0
    assert result["sub_categories"]["subjects"]["n_questions"] == 3
    low, high = avg["accuracy"]["ci"]
    assert low <= 37.5 <= high and low < high


def test_ratios_agree_with_the_aggregate():
    scorer = get_scorer("vidcap_qa")
    s = score("x", [2, 1, 0, -1, 2], ["content"] * 5, 7)
    for name, ratio in scorer.ratios().items():
        expected = {"accuracy": 40.0, "precision": 75.0, "coverage": 80.0}[name]
        assert ratio.num(s.metrics) / ratio.den(s.metrics) * ratio.scale == pytest.approx(expected)


@pytest.mark.parametrize("raw,expected", [
    ('{"score": 2, "analysis": "ok"}', 2), ('{"score": "-1"}', -1), ("```json\n{\"score\": 0}\n```", 0),
    ("Score: 1. The colour is close.", 1), ("score: -1 (the subject is wrong)", -1),
])
def test_grades_parse(raw, expected):
    assert parse_grade(raw) == expected


@pytest.mark.parametrize("raw", ['{"score": 3}', '{"grade": 2}', "I think it is right.", "score: 2 ... score: 1",
                                 '{"score": 1.5}', '{"score": true}'])
def test_bad_grades_are_errors(raw):
    with pytest.raises(JudgeAnswerError):
        parse_grade(raw)


def test_answers_parse():
    assert parse_answerer('{"answer": " Red. "}') == "Red."
    assert parse_answerer("A red car.") == "A red car."
    for bad in ('{"answer": ""}', '{"reply": "x"}', "   ", '{"answer": "x"'):
        with pytest.raises(JudgeAnswerError):
            parse_answerer(bad)


# -- end to end ---------------------------------------------------------------------------------------

QA = [
    {"video_dir": "/abs/path/videos/v1.mp4", "QA_pairs": [
        {"question": "What colour is the car?", "answer": "Red.", "sub_category": "subjects",
         "primary_category": "video content"},
        {"question": "Is the scene lit from the left?", "answer": "Yes.", "sub_category": "lighting",
         "primary_category": "video aesthetics"},
        {"question": "Which way does the car move?", "answer": "To the left, slowly.", "sub_category": "object motion",
         "primary_category": "video motion"}]},
    {"video_dir": "v2.mp4", "QA_pairs": [
        {"question": "Does the ball fall down?", "answer": "Yes.", "sub_category": "common sense",
         "primary_category": "physical laws"},
        {"question": "What animal is shown?", "answer": "A cat.", "sub_category": "subjects",
         "primary_category": "video content"}]},
    {"video_dir": "v3.mp4", "QA_pairs": []},
]
GRADE = {"What colour is the car?": 2, "Is the scene lit from the left?": -1, "Which way does the car move?": 1,
         "Does the ball fall down?": 0, "What animal is shown?": 2}


def responder(body):
    text = next(p["text"] for p in body["messages"][0]["content"] if p["type"] == "text") \
        if isinstance(body["messages"][0]["content"], list) else body["messages"][0]["content"]
    question = re.search(r"Question: (.*)", text).group(1).strip()
    if "Correct answer:" in text:  # the matcher
        assert "Predicted answer: about " + question in text  # it got the answerer's answer
        return json.dumps({"score": GRADE[question], "analysis": "scripted"})
    assert "Description:" in text and "Correct answer" not in text  # the answerer never sees the gold answer
    return json.dumps({"answer": "about " + question})


def write_video(path):
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for t in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * t, dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_two_roles_end_to_end_on_loopback(tmp_path, isolated_cache):
    data, videos = tmp_path / "vcb", tmp_path / "videos"
    data.mkdir()
    videos.mkdir()
    (data / "VidCapBench-AE_QA.jsonl").write_text("\n".join(json.dumps(r) for r in QA))
    for name in ("v1.mp4", "v2.mp4", "v3.mp4"):
        write_video(videos / name)
    preds = tmp_path / "caps.jsonl"
    captions = {"v1.mp4": "A red car drives left.", "v2.mp4": "A cat sits on a mat.", "v3.mp4": "Nothing here."}
    preds.write_text("\n".join(json.dumps({"task": "vidcapbench_ae", "id": k, "caption": v})
                               for k, v in captions.items()))

    def cli(out):
        return subprocess.run(
            [sys.executable, "-m", "anycapeval.cli", "score", "--predictions", str(preds), "--tasks", "vidcapbench_ae",
             "--data-dir", str(data), "--media-dir", str(videos), "--judge", "openai", "--judge-base-url",
             server.base_url, "--output", str(out), "--cache", str(tmp_path / "c.db")],
            capture_output=True, text=True, env=cli_env(isolated_cache), timeout=300)

    with LoopbackServer(responder) as server:
        proc = cli(tmp_path / "run")
        assert proc.returncode == 0, proc.stderr
        assert server.request_count == 10  # 5 answers, then 5 grades
        assert all(b["model"] == "gpt-4o-2024-08-06" for b in server.requests)
        again = cli(tmp_path / "run2")
        assert again.returncode == 0 and server.request_count == 10  # both rounds come from the cache

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["tasks"]["vidcapbench_ae"]
    assert summary["judges_by_role"] == {"vidcap_answerer": "openai:gpt-4o-2024-08-06",
                                         "vidcap_matcher": "openai:gpt-4o-2024-08-06"}
    assert set(summary["prompt"]) == {"vidcap_answerer", "vidcap_matcher"}
    avg = summary["average"]  # A=2 B=1 C=1 D=1; lengths 5 and 6 words (v3 has no questions: skipped)
    assert value(avg, "accuracy") == pytest.approx(40.0) and value(avg, "precision") == pytest.approx(75.0)
    assert value(avg, "coverage") == pytest.approx(80.0)
    assert value(avg, "conciseness") == pytest.approx(40 * 100 / 5.5)
    assert (avg["n"], avg["n_skipped"]) == (2, 1)
    dims = summary["dimensions"]
    assert value(dims["content"], "accuracy") == pytest.approx(100.0)
    assert value(dims["content"], "conciseness") == pytest.approx(100 * 100 / 5.5)
    assert value(dims["aesthetics"], "precision") == pytest.approx(0.0)
    assert value(dims["motion"], "precision") == pytest.approx(100.0)
    assert value(dims["physics"], "coverage") == pytest.approx(0.0)
    rows = [json.loads(line) for line in (tmp_path / "run" / "judgments.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows].count(0) == 5 and {r["role"] for r in rows if r["round"] == 1} == \
        {"vidcap_matcher"}
    assert len({r["cache_key"] for r in rows}) == 10 and all(r["media_sent"] == "none" for r in rows)
    scores = [json.loads(line) for line in (tmp_path / "run" / "scores.jsonl").read_text().splitlines()]
    v1 = next(s for s in scores if s["item_id"] == "v1.mp4")
    assert v1["metrics"]["grades"] == [2, -1, 1] and v1["metrics"]["length"] == 5


def test_unknown_sub_category_names_file_line_and_field(tmp_path):
    from anycapeval.readers.vidcap import load_vidcap_items
    from anycapeval.registry import all_tasks

    bad = {"video_dir": "a.mp4", "QA_pairs": [{"question": "q", "answer": "a", "sub_category": "vibes"}]}
    (tmp_path / "VidCapBench-HE_QA.jsonl").write_text(json.dumps(QA[1]) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(Exception, match=r"VidCapBench-HE_QA.jsonl:2.*QA_pairs.sub_category.*vibes"):
        load_vidcap_items(all_tasks()["vidcapbench_he"], str(tmp_path), None)
