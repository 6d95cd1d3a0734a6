"""Reference metrics: corpus CIDEr against a hand-worked example, BLEU resampling, the CSV readers, and a
scoring run through the CLI (METEOR recomputed from the jar's statistics)."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED_DATA, cli_env

from anycapeval import refmetrics
from anycapeval.readers.reference import load_reference_items
from anycapeval.registry import all_tasks
from anycapeval.scorers.reference_metrics import corpus_metrics
from anycapeval.types import AnyCapError

# Two clips. CIDEr (pycocoevalcap, sigma 6): idf = log(#clips) - log(df), so "a" (in both clips) weighs 0
# and every other n-gram log 2; each n-gram order's cosine is multiplied by exp(-d^2 / 72), d = the
# difference in bigram counts; the clip's score is 10 x the mean over n = 1..4.
#  clip 0: "a cat" vs "a cat sits": unigram and bigram cosines 1/sqrt(2), no trigrams, d = -1
#          -> 10 x (2 / sqrt(2)) x exp(-1/72) / 4
#  clip 1: "a dog runs" vs itself: cosines 1, 1, 1 and no 4-grams -> 10 x 3 / 4 = 7.5
CANDIDATES = ["a cat", "a dog runs"]
REFERENCES = [["a cat sits"], ["a dog runs"]]
CLIP0 = 10 * (2 / math.sqrt(2)) * math.exp(-1 / 72) / 4


def test_corpus_cider_matches_hand_computation():
    result = refmetrics.compute(["cider"], CANDIDATES, REFERENCES)["cider"]
    assert result.per_item == pytest.approx([CLIP0, 7.5])
    assert result.corpus == pytest.approx((CLIP0 + 7.5) / 2)
    # one clip at a time (the official AnyCap audio script) the IDF is log(1) = 0: CIDEr is always 0
    assert refmetrics.compute(["cider"], CANDIDATES[1:], REFERENCES[1:])["cider"].corpus == 0.0


def test_bleu_resamples_reproduce_corpus_bleu_and_cis_bracket_it():
    rng = np.random.default_rng(3)
    words = "a dog cat runs sits on the red mat grass ball jumps".split()
    refs = [[" ".join(rng.choice(words, 6)) for _ in range(3)] for _ in range(30)]
    cands = [" ".join(rng.choice(words, 5)) for _ in range(30)]
    plain = refmetrics.compute(["bleu1", "bleu4", "cider", "rouge_l"], cands, refs)
    ours = corpus_metrics(["bleu1", "bleu4", "cider", "rouge_l"], cands, refs, n_resamples=100)
    for name in ("bleu1", "bleu4", "cider", "rouge_l"):
        assert ours[name]["value"] == plain[name].corpus
        low, high = ours[name]["ci"]
        assert low < high
    low, high = ours["bleu1"]["ci"]
    assert low <= plain["bleu1"].corpus <= high
    # the recomputation from per-clip statistics gives pycocoevalcap's corpus BLEU on the full sample
    from anycapeval.scorers.reference_metrics import bleu_from_stats, bleu_stats

    gts, res = refmetrics.tokenize(cands, refs)
    full = bleu_from_stats(bleu_stats(gts, res).sum(axis=0))
    assert full[0] == pytest.approx(plain["bleu1"].corpus, abs=1e-12)
    assert full[3] == pytest.approx(plain["bleu4"].corpus, abs=1e-12)


def test_readers_group_audiocaps_rows_and_name_bad_lines(tmp_path):
    (tmp_path / "audiocaps_test_references.csv").write_bytes(
        b"audiocap_id,youtube_id,start_time,caption\r\n1,abc,0,A dog barks\r\n2,abc,0,Barking\r\n"
        b"3,xyz,10,Rain falls\r\n")
    items = load_reference_items(all_tasks()["audiocaps_test"], str(tmp_path), None)
    assert [(i.id, i.media, i.references) for i in items] == [("abc", "abc.wav", ("A dog barks", "Barking")),
                                                              ("xyz", "xyz.wav", ("Rain falls",))]
    (tmp_path / "clotho_evaluation_references.csv").write_text(
        "file_name,caption_1,caption_2\nrain.wav,Rain falls,Rain on a roof\nrain.wav,x,y\n")
    with pytest.raises(AnyCapError, match=r"clotho_evaluation_references.csv:3.*file_name.*duplicate"):
        load_reference_items(all_tasks()["clotho_eval"], str(tmp_path), None)


@pytest.mark.slow  # loads MiniLM and runs METEOR's Java twice
def test_score_command_reports_corpus_metrics_and_unavailable_spice(tmp_path, isolated_cache):
    (tmp_path / "clotho_evaluation_references.csv").write_text(
        "file_name,caption_1,caption_2\n" + "".join(f"c{i}.wav,{','.join(r)}\n" for i, r in enumerate(
            [("a cat sits", "a cat is sitting"), ("a dog runs", "a dog is running"), ("rain falls", "it rains"),
             ("a car passes", "a vehicle drives by")])))
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps({"task": "clotho_eval", "id": f"c{i}.wav", "caption": c})
                               for i, c in enumerate(["a cat", "a dog runs", "heavy rain"])))  # c3 has no caption
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "anycapeval.cli", "score", "--predictions", str(preds), "--tasks", "clotho_eval",
         "--data-dir", str(tmp_path), "--max-generation-error-rate", "0.25", "--output", str(out), "--cache",
         str(tmp_path / "c.db")],
        capture_output=True, text=True, env=cli_env(isolated_cache), timeout=300)
    assert proc.returncode == 0, proc.stderr
    task = json.loads((out / "summary.json").read_text())["tasks"]["clotho_eval"]
    avg = task["average"]
    assert (avg["n"], avg["n_generation_error"]) == (3, 1)  # the missing caption is left out, not a zero
    expected = refmetrics.compute(["cider", "bleu4", "meteor"], ["a cat", "a dog runs", "heavy rain"],
                                  [["a cat sits", "a cat is sitting"], ["a dog runs", "a dog is running"],
                                   ["rain falls", "it rains"]])
    for name in ("cider", "bleu4", "meteor"):  # METEOR recomputed from the jar's statistics, as resampled
        assert avg[name]["value"] == pytest.approx(expected[name].corpus)
        assert avg[name]["ci"][0] <= avg[name]["ci"][1]
    assert 0 < avg["minilm"]["value"] < 1
    assert set(avg["unavailable"]) == {"spice", "spider"} and "spider" not in avg
    assert task["judge"] == "none" and task["main_metric"] == "cider"
    assert list(task["dimensions"]) == ["Clotho"]
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert rows[0]["metrics"]["references"] == ["a cat sits", "a cat is sitting"]


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "audio_captioning").is_dir(), reason="shared data not present")
def test_official_reference_files_and_gpt4o_captions_join():
    data = SHARED_DATA / "audio_captioning"
    audiocaps = load_reference_items(all_tasks()["audiocaps_test"], str(data), None)
    clotho = load_reference_items(all_tasks()["clotho_eval"], str(data), None)
    assert len(audiocaps) == 975 and all(len(i.references) == 5 for i in audiocaps)
    assert len(clotho) == 1045 and all(len(i.references) == 5 for i in clotho)
    assert not any("\r" in r for i in audiocaps for r in i.references)
    stems = {json.loads(line)["audio_path"].rsplit("/", 1)[1].rsplit(".", 1)[0]
             for line in (data / "audiocaps_eval_gpt4o_2024_10_01_predictions_new.jsonl").open()}
    assert len(stems & {i.media.removesuffix(".wav") for i in audiocaps}) == 953
    names = {json.loads(line)["audio_path"].rsplit("/", 1)[1]
             for line in (data / "clotho_eval_gpt4o_2024-10-01_predictions_new.jsonl").open()}
    assert names == {i.media for i in clotho}
