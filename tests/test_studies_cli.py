"""`anycapeval correlate`, `judge-check` and `kpd-study` as real subprocesses (offline judge, loopback server)."""

import json
import re
import subprocess
import sys

import pytest
from conftest import SHARED_DATA, cli_env, judge_answer
from loopback_server import LoopbackServer


def cli(args, cache, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "anycapeval.cli", *args], capture_output=True, text=True,
                          env=cli_env(cache), timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc


THUMB_ROWS = [
    ("img1", "A dog runs on the grass.", ["A dog running across a lawn.", "A brown dog runs on grass."], 5.0),
    ("img1", "A cat sleeps on a sofa.", ["A dog running across a lawn.", "A brown dog runs on grass."], 1.0),
    ("img1", "A dog on the grass and a", ["A dog running across a lawn.", "A brown dog runs on grass."], 2.5),
    ("img2", "Two people ride bikes down a street.", ["People cycling on a road.", "Two cyclists on a street."], 5.0),
    ("img2", "A plate of food on a table.", ["People cycling on a road.", "Two cyclists on a street."], 1.5),
    ("img2", "People on bicycles.", ["People cycling on a road.", "Two cyclists on a street."], 4.0),
    ("img3", "A red bus parked by the road.", ["A red double decker bus.", "A bus parked on the street."], 4.5),
    ("img3", "A man surfing a wave.", ["A red double decker bus.", "A bus parked on the street."], 1.0),
]


def test_correlate_thumb_and_fense_files(tmp_path, isolated_cache):
    thumb = tmp_path / "thumb.jsonl"
    thumb.write_text("".join(json.dumps({"image": i, "system": f"S{n % 3}", "candidate": c, "references": r,
                                         "human_score": h}) + "\n" for n, (i, c, r, h) in enumerate(THUMB_ROWS)))
    out = tmp_path / "thumb_out"
    proc = cli(["correlate", "--human", str(thumb), "--format", "thumb", "--metric", "bleu4,minilm,offline_judge",
                "--resamples", "200", "--output", str(out)], isolated_cache)
    assert "offline_judge" in proc.stdout and "Kendall τ-c" in proc.stdout
    result = json.loads((out / "correlation.json").read_text())
    for metric in ("bleu4", "minilm", "offline_judge"):
        for stat in ("pearson", "spearman", "kendall_tau_b", "kendall_tau_c"):
            entry = result[metric][stat]
            assert entry["n"] == 8 and entry["ci"][0] <= entry["value"] <= entry["ci"][1]
        assert result[metric]["system_level"]["n_systems"] == 3
    assert result["offline_judge"]["pearson"]["value"] > 0.7  # the wrong-image captions score low
    assert "| offline_judge |" in (out / "correlation.md").read_text() and (out / "scatter.png").stat().st_size > 0

    refs = ["a dog barks", "a dog is barking loudly", "barking of a dog", "a dog barks twice", "dog barking"]
    fense = tmp_path / "fense.json"
    fense.write_text(json.dumps([{"audio_id": "c1", "references": refs,
                                  "HC": [refs[0], refs[1], "g1", "g2", [1, 1, 0, -1]],
                                  "HI": [refs[2], "a woman sings a song", "g3", "g9", [1, 1, 1, 1]],
                                  "HM": [refs[3], "a dog barks and a", "g4", "attn", [1, 1, 1, 0]],
                                  "MM_1": ["a dog barks", "a car engine revs", "fc", "rl", 0, [1, 1, 1, 1]],
                                  "MM_2": ["a dog barks and a dog barks", "a dog barks", "fc", "rl", [-1, -1, 0, 0]],
                                  "MM_3": ["a cat meows", "a bird sings", "fc", "rl", [0, 0, 1, -1]]}]))
    out = tmp_path / "fense_out"
    cli(["correlate", "--human", str(fense), "--format", "fense", "--metric", "cider,offline_judge",
         "--output", str(out)], isolated_cache)
    result = json.loads((out / "correlation.json").read_text())
    assert result["study"]["n"] == 6 and result["study"]["n_tied"] == 1
    acc = result["offline_judge"]["pairwise_accuracy"]
    assert set(acc) == {"HC", "HI", "HM", "MM", "total"} and result["offline_judge"]["pairs_scored"]["total"] == 5
    assert acc["HI"] == acc["HM"] == acc["MM"] == 100.0
    assert (out / "pairwise_accuracy.png").is_file()


def graded(body):
    """A style judge on the loopback server that likes captions with the word 'good'."""
    text = body["messages"][0]["content"]
    text = text if isinstance(text, str) else "".join(p.get("text", "") for p in text)
    caption = text.split("Caption to rate:")[1].split('"""')[1]
    return json.dumps({"score": 4 if "good" in caption else 1, "reason": "r"})


def test_correlate_csv_with_an_api_judge_uses_the_cache(tmp_path, isolated_cache):
    path = tmp_path / "ratings.csv"
    rows = [("a good photo of a cat", 5), ("a bad blurry thing", 1), ("good light on a dog", 4), ("meh", 2),
            ("good", 5), ("nothing here", 1)]
    path.write_text("caption,refs,score\n" + "".join(f'"{c}","[""a cat"", ""a dog""]",{s}\n' for c, s in rows))
    args = ["correlate", "--human", str(path), "--format", "csv", "--columns",
            "candidate=caption,references=refs,human=score", "--metric", "judge", "--judge", "openai:judge-snap",
            "--resamples", "100", "--cache", str(tmp_path / "c.db")]
    with LoopbackServer(graded) as server:
        cli([*args, "--judge-base-url", server.base_url, "--output", str(tmp_path / "a")], isolated_cache)
        first = server.request_count
        cli([*args, "--judge-base-url", server.base_url, "--output", str(tmp_path / "b")], isolated_cache)
        assert first == 6 and server.request_count == 6  # the second run is answered from the cache
    prompt = server.requests[0]["messages"][0]["content"]
    prompt = prompt if isinstance(prompt, str) else prompt[0]["text"]
    assert "Reference 1: a cat" in prompt and "Reference 2: a dog" in prompt
    result = json.loads((tmp_path / "b" / "correlation.json").read_text())
    assert result["judge"]["spearman"]["value"] > 0.8 and result["judge"]["n_judge_error"] == 0


CALLS = {"n": 0}


def flaky(body):
    """Valid answers, except every 7th call is unreadable and every 5th style grade is 2 instead of 3."""
    CALLS["n"] += 1
    if CALLS["n"] % 7 == 0:
        return "I think it is fine."
    answer = judge_answer(body)
    if CALLS["n"] % 5 == 0 and '"score": 3' in answer:
        return answer.replace('"score": 3', '"score": 2')
    return answer


def test_judge_check_against_the_loopback_server(tmp_path, isolated_cache):
    out = tmp_path / "check"
    with LoopbackServer(flaky) as server:
        proc = cli(["judge-check", "--tasks", "demo_image_content,demo_audio_style", "--judge", "openai:judge-snap",
                    "--judge-base-url", server.base_url, "--judge-max-attempts", "1", "--repeats", "3",
                    "--output", str(out)], isolated_cache)
    seeds = {b["seed"] for b in server.requests}
    assert {1234, 1235, 1236} <= seeds  # fresh calls with varied seeds, no cache
    result = json.loads((out / "judge_check.json").read_text())
    content, style = result["tasks"]["demo_image_content"], result["tasks"]["demo_audio_style"]
    n_calls = 3 * 8 + 8 + 3 * 8 + 8  # repeats, other references, repeats, paraphrases
    assert server.request_count == n_calls
    for t in (content, style):
        assert 0 < t["parse_failure_rate"] < 0.5 and t["agreement"] < 1
    assert content["self_consistency"]["own_reference_recall"] == pytest.approx(1.0)  # this judge says yes to all
    assert style["length_bias"]["mean_length_ratio"] > 1.05
    assert "demo_audio_style" in proc.stdout and (out / "judge_check.md").is_file()


def test_judge_check_with_the_offline_judge(tmp_path, isolated_cache):
    out = tmp_path / "check"
    cli(["judge-check", "--tasks", "demo_image_content,demo_image_style", "--judge", "offline", "--repeats", "2",
         "--output", str(out)], isolated_cache)
    result = json.loads((out / "judge_check.json").read_text())
    content, style = result["tasks"]["demo_image_content"], result["tasks"]["demo_image_style"]
    assert content["agreement"] == 1.0 and content["score_std_mean"] == 0.0 and content["parse_failure_rate"] == 0
    sc = content["self_consistency"]
    assert sc["own_reference_recall"] > 0.8 and sc["other_reference_recall"] < sc["own_reference_recall"]
    assert style["length_bias"]["n"] == 8 and style["length_bias"]["mean_grade_shift"] is not None


def test_longer_paraphrase_is_deterministic_and_longer():
    from anycapeval.studies.judge_check import longer_paraphrase

    text = "There is a big dog next to many cats. It also appears calm."
    para = longer_paraphrase(text, "image")
    assert para == longer_paraphrase(text, "image") and len(para.split()) > len(text.split()) + 5
    assert para.startswith("In this image, there can be seen a large in size dog right next to a great many cats.")


def test_kpd_study_on_a_run_directory(tmp_path, isolated_cache):
    run = tmp_path / "run"
    run.mkdir()
    rows, counts = [], ["id,human_count"]
    for i in range(12):
        words = 20 + 10 * i
        matched = min(5, 1 + i // 3)
        metrics = {"matched": matched, "matched_after_penalty": matched, "key_points": 5, "words": words}
        rows.append({"task": "t", "item_id": str(i), "dimension": "IPos", "status": "ok", "metrics": metrics})
        counts.append(f"{i},{2 + i // 2}")
    rows.append({"task": "t", "item_id": "99", "dimension": "Brf", "status": "ok", "metrics": {"style_score": 3}})
    (run / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "counts.csv").write_text("\n".join(counts) + "\n")
    proc = cli(["kpd-study", "--run", str(run), "--counts", str(tmp_path / "counts.csv")], isolated_cache)
    result = json.loads((run / "kpd_study" / "kpd_study.json").read_text())
    assert result["n_items"] == 12 and result["human_counts"]["n_matched_items"] == 12
    assert result["human_counts"]["length"]["spearman"]["value"] > 0.9
    assert result["kpd_vs_length"]["pearson"]["value"] < 0  # density falls as captions grow
    assert re.search(r"kpd vs human count", proc.stdout) and (run / "kpd_study" / "kpd_vs_length.png").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "human").is_dir(), reason="../shared/data/human not present")
def test_offline_judge_targets_on_the_shared_human_data(tmp_path, isolated_cache):
    human = SHARED_DATA / "human"
    cli(["correlate", "--human", str(human / "fense_audiocaps_eval.json"), "--format", "fense",
         "--metric", "minilm,offline_judge", "--output", str(tmp_path / "f")], isolated_cache)
    fense = json.loads((tmp_path / "f" / "correlation.json").read_text())
    assert fense["offline_judge"]["pairwise_accuracy"]["total"] >= 85.0
    assert fense["minilm"]["pairwise_accuracy"]["total"] == pytest.approx(80.6, abs=0.5)
    cli(["correlate", "--human", str(human / "thumb_coco.jsonl"), "--format", "thumb",
         "--metric", "minilm,offline_judge", "--resamples", "200", "--output", str(tmp_path / "t")], isolated_cache)
    thumb = json.loads((tmp_path / "t" / "correlation.json").read_text())
    judged = thumb["offline_judge"]
    assert judged["pearson"]["value"] >= 0.45 and judged["kendall_tau_c"]["value"] >= 0.25
    assert thumb["minilm"]["pearson"]["value"] == pytest.approx(0.427, abs=0.005)
