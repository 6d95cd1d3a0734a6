"""ACM data: the ACD human-turn quirks, folder -> kind, bad lines, our triplet JSONL, kind mixing
at a ratio, and the media policy (text-only when files are absent)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from anycapeval.acm.config import DataConfig
from anycapeval.acm.data import mix, parse_human_turn, read_triplets, resolve_media
from conftest import SHARED_DATA

from anycapeval.types import AnyCapError, InputError

ACD = SHARED_DATA / "acd"
PRE = "You are a multimodal aligner, and your task is to transform the existing caption into a caption that better " \
      "meets the requirements. The requirement is: "
CLOSE = " You only need to answer the caption that better meets the requirements, and do not add anything else."


def line(media_key: str, human: str, target: str, **extra) -> str:
    return json.dumps({media_key: "x.jpg" if media_key == "image" else "x.wav" if media_key == "audio" else "x.mp4",
                       "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": target}],
                       **extra})


@pytest.mark.parametrize("human, instruction, draft", [
    # image q-a-c / q-8b-c: quoted, no space before "The existing caption is:"
    (f"<image>\n{PRE}'Be brief.'.The existing caption is: 'A cat.'.{CLOSE}", "Be brief.", "A cat."),
    # image q-c-c: a space after the quote
    (f"<image>\n{PRE}'Be brief.'. The existing caption is: 'A cat.'.{CLOSE}", "Be brief.", "A cat."),
    # video q-a-c: <image> tag on a video, requirement unquoted with '..', draft unquoted
    (f"<image>\n{PRE} poetic caption based on the video..The existing caption is: Waves,\nrise..  {CLOSE}",
     "poetic caption based on the video.", "Waves,\nrise."),
    # audio q_c_a_org: the tag inside the requirement, unquoted
    (f"<audio>\n{PRE}<audio>\nDescribe this audio with a poem. The existing caption is: Dogs bark.{CLOSE}",
     "Describe this audio with a poem.", "Dogs bark."),
    # audio q_c_a: quoted, no closing sentence
    (f"<audio>\n{PRE}'Describe the audio.' The existing caption is: 'Rain falls.'", "Describe the audio.",
     "Rain falls."),
    # audio gpt_q_c: a plain instruction, no draft
    ("<audio>\nUse a brief sentence to describe the content of this audio.",
     "Use a brief sentence to describe the content of this audio.", None),
])
def test_human_turn_variants(human, instruction, draft):
    assert parse_human_turn(human) == (instruction, draft)


def write_acd(root: Path, files: dict[str, list[str]]) -> Path:
    for rel, lines in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_folders_map_to_kinds_and_placeholders_are_skipped(tmp_path):
    root = write_acd(tmp_path / "acd", {
        "anycapdataset_image/caption_data/q-c-c/25K_A_equal_C/r/a.jsonl": [
            line("image", f"<image>\n{PRE}'Q1'. The existing caption is: 'Same.'.{CLOSE}", "Same.")],
        "anycapdataset_image/caption_data/q-a-c/r/b.jsonl": [
            line("image", f"<image>\n{PRE}'Q2'.The existing caption is: 'Wrong.'.{CLOSE}", "Right."),
            line("image", f"<image>\n{PRE}'[Insert question about scene]'.The existing caption is: 'W'.{CLOSE}", "R")],
        "anycapdataset_image/caption_data/q-8b-c/r/c.jsonl": [
            line("image", f"<image>\n{PRE}'Q3'.The existing caption is: 'Plain.'.{CLOSE}", "Fancy.")],
        "anycapdataset_audio/caption_data/q_c_a/d.jsonl": [
            line("audio", f"<audio>\n{PRE}'Q4' The existing caption is: '[Your slightly inferior description]'",
                 "Target.")],
        "anycapdataset_audio/caption_data/gpt_q_c/e.jsonl": [line("audio", "<audio>\nDescribe it.", "Birds sing.")],
        "anycapdataset_video/caption_data/q-8b-c/f.jsonl": [
            line("video", f"<video>\n{PRE}'Q5'.The existing caption is: 'Draft.'.{CLOSE}", "Poem.")],
    })
    triplets, report = read_triplets(root)
    kinds = {t.instruction: (t.kind, t.modality, t.draft) for t in triplets}
    assert kinds == {"Q1": ("correct", "image", "Same."), "Q2": ("hallucinated", "image", "Wrong."),
                     "Q3": ("uncontrolled", "image", "Plain."), "Describe it.": ("uncontrolled", "audio", ""),
                     "Q5": ("uncontrolled", "video", "Draft.")}
    assert report.skipped == Counter({"q-a-c: template placeholder in requirement or target": 1,
                                      "q_c_a: draft is only a template placeholder": 1})
    assert all(t.source.endswith(":1") or t.source.endswith(":2") for t in triplets)
    without_direct, _ = read_triplets(root, include_direct=False)
    assert len(without_direct) == len(triplets) - 1


@pytest.mark.parametrize("bad, field", [
    ("{not json", "(line)"),
    (json.dumps({"image": "a.jpg", "conversations": [{"from": "human", "value": "x"}]}), "conversations"),
    (json.dumps({"image": "a.jpg", "conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]}),
     "conversations"),
    (json.dumps({"image": "a.jpg", "conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": " "}]}),
     "conversations[1].value"),
    (json.dumps({"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]}),
     "image|video|audio"),
    (line("image", "<image>\nno requirement marker here", "y"), "conversations[0].value"),
])
def test_bad_acd_lines_name_file_line_and_field(tmp_path, bad, field):
    good = line("image", f"<image>\n{PRE}'Q'.The existing caption is: 'D'.{CLOSE}", "T")
    root = write_acd(tmp_path / "acd", {"anycapdataset_image/caption_data/q-a-c/r/x.jsonl": [good, bad]})
    with pytest.raises(InputError) as info:
        read_triplets(root)
    assert info.value.where.endswith("x.jsonl:2")
    assert info.value.field in (field, "<line>")


def test_triplet_jsonl_and_its_errors(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [{"instruction": "Be brief.", "draft": "A cat sits.", "target": "A cat.", "kind": "uncontrolled"},
            {"instruction": "Be brief.", "draft": "A cat.", "target": "A cat.", "kind": "correct",
             "modality": "image", "media": "cat.jpg"}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    triplets, report = read_triplets(path)
    assert [t.kind for t in triplets] == ["uncontrolled", "correct"] and triplets[1].media == "cat.jpg"
    assert report.read == Counter({"text/jsonl/uncontrolled": 1, "image/jsonl/correct": 1})
    for broken, field in [({"instruction": "q", "target": "t", "kind": "better"}, "kind"),
                          ({"instruction": "q", "target": "", "kind": "correct"}, "target"),
                          ({"instruction": "q", "draft": "d", "target": "t", "kind": "correct"}, "draft"),
                          ({"instruction": "q", "target": "t", "kind": "correct", "draft": "t", "media": "a.jpg"},
                           "media")]:
        path.write_text(json.dumps(rows[0]) + "\n" + json.dumps(broken) + "\n", encoding="utf-8")
        with pytest.raises(InputError) as info:
            read_triplets(path)
        assert (info.value.where, info.value.field) == (f"{path}:2", field)


def test_mix_fills_correct_from_targets_or_refuses(tmp_path):
    path = tmp_path / "audio.jsonl"  # like ACD audio: no already-correct samples
    rows = [{"instruction": f"q{i}", "draft": f"d{i}", "target": f"t{i}", "kind": k}
            for i, k in enumerate(["uncontrolled"] * 40 + ["hallucinated"] * 20)]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    triplets, _ = read_triplets(path)
    mixed, counts = mix(triplets, DataConfig())
    assert counts == Counter({"uncontrolled": 40, "correct (copied target)": 40, "hallucinated": 20})
    assert all(t.draft == t.target for t in mixed if t.kind == "correct")
    with pytest.raises(AnyCapError, match="no samples of kind correct"):
        mix(triplets, DataConfig(fill_correct_from_targets=False))
    with pytest.raises(AnyCapError, match="more than the data allows"):
        mix(triplets, DataConfig(num_samples=1000))
    only_two, counts = mix(triplets, DataConfig(ratio={"uncontrolled": 1, "hallucinated": 1, "correct": 0}))
    assert counts == Counter({"uncontrolled": 20, "hallucinated": 20})


def test_media_policy(tmp_path):
    from anycapeval.acm.data import Triplet

    (tmp_path / "media").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "media" / "a.jpg")
    ts = [Triplet("q", "d", "t", "uncontrolled", "image", "a.jpg"), Triplet("q", "d", "t", "correct", "image", "b.jpg"),
          Triplet("q", "d", "t", "correct", "audio", "c.wav")]
    encoders = {"image": True, "video": True, "audio": True}
    samples, summary = resolve_media(ts, DataConfig(), encoders)
    assert [p for _, p in samples] == [None, None, None] and summary["text_only"]
    samples, summary = resolve_media(ts, DataConfig(media_dir=str(tmp_path / "media")), encoders)
    assert [p.name if p else None for _, p in samples] == ["a.jpg", None, None]
    assert summary["with_media"] == {"image": 1} and summary["without_media"] == {"image": 1, "audio": 1}
    assert not summary["text_only"]
    with pytest.raises(InputError, match="b.jpg"):
        resolve_media(ts, DataConfig(media_dir=str(tmp_path / "media"), media="required"), encoders)
    samples, summary = resolve_media(ts, DataConfig(media_dir=str(tmp_path / "media"), media="none"), encoders)
    assert all(p is None for _, p in samples) and summary["text_only"]


def test_dataset_row_carries_media_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    from anycapeval.acm.config import load_config
    from anycapeval.acm.data import ACMDataset, Collator, Triplet
    from anycapeval.acm.model import ACMModel
    from anycapeval.acm.text import train_bpe
    from PIL import Image

    Image.new("RGB", (50, 30), "blue").save(tmp_path / "a.jpg")
    tokenizer = train_bpe(["a blue picture", "describe"], 300)
    model = ACMModel.build(load_config("tiny"), tokenizer)
    samples = [(Triplet("Describe.", "Blue.", "A blue picture.", "uncontrolled", "image", "a.jpg"), tmp_path / "a.jpg"),
               (Triplet("Describe.", "Blue.", "A blue picture.", "uncontrolled", "image", "a.jpg"), None)]
    data = ACMDataset(samples, tokenizer, model.media_processor(), model.tokens_per_item, 256)
    rows = [data[0], data[1]]
    assert rows[0]["image"].shape == (3, 32, 32) and "image" not in rows[1]
    batch = Collator(tokenizer.pad_token_id)(rows)
    assert batch["image"].shape == (1, 3, 32, 32)
    assert torch.isfinite(model(**batch).loss)


@pytest.mark.skipif(not ACD.is_dir(), reason="shared ACD sample not present")
def test_shared_acd_sample_kinds_and_ratio():
    triplets, report = read_triplets(ACD)
    by_kind = Counter(t.kind for t in triplets)
    assert set(by_kind) == {"uncontrolled", "correct", "hallucinated"}
    assert all(t.draft == t.target for t in triplets if t.kind == "correct")
    assert sum(report.skipped.values()) < 0.01 * len(triplets)  # template leftovers only
    for ratio in ({"uncontrolled": 2, "correct": 2, "hallucinated": 1}, {"uncontrolled": 1, "correct": 2,
                                                                          "hallucinated": 2}):
        config = DataConfig(ratio=ratio, num_samples=5000, seed=7)
        mixed, _ = mix(triplets, config)
        counts = Counter(t.kind for t in mixed)
        total = sum(ratio.values())
        assert len(mixed) == 5000
        for kind, weight in ratio.items():
            assert abs(counts[kind] / len(mixed) - weight / total) <= 0.02, (kind, counts)
        assert [t.source for t in mix(triplets, config)[0]] == [t.source for t in mixed]  # seeded
        assert [t.source for t in mix(triplets, DataConfig(ratio=ratio, num_samples=5000, seed=8))[0]] != \
            [t.source for t in mixed]
