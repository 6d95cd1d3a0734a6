"""ACM network: tiny components built from inline configs (no download), every modality through
forward and backward, frozen encoders, target-only labels, save/load and batched generation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from anycapeval.acm.config import load_config, parse_config  # noqa: E402
from anycapeval.acm.data import Collator  # noqa: E402
from anycapeval.acm.model import ACMModel  # noqa: E402
from anycapeval.acm.text import MEDIA_TOKENS, encode, train_bpe  # noqa: E402

from anycapeval.types import InputError  # noqa: E402

TEXTS = ["A red kite flies over a green field.", "Two dogs run along the beach at sunset.",
         "Describe the image briefly.", "A man plays a guitar on a small stage."] * 5


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    config = load_config("tiny")
    tokenizer = train_bpe(TEXTS, 300)
    model = ACMModel.build(config, tokenizer)
    return config, tokenizer, model


def media_for(model, modality: str, n: int):
    cfg = model.acm_config.model
    size = model.vision.config.image_size
    if modality == "image":
        return torch.randn(n, 3, size, size)
    if modality == "video":
        return torch.randn(n, cfg.video_frames, 3, size, size)
    return torch.randn(n, model.audio.config.num_mel_bins, 2 * model.audio.config.max_source_positions)


def batch_for(tokenizer, model, modality: str | None, n: int = 2):
    rows = []
    for i in range(n):
        k = model.tokens_per_item[modality] if modality else 0
        enc = encode(tokenizer, "Describe it briefly.", TEXTS[i], k, modality, TEXTS[i + 1], 256)
        rows.append({"input_ids": enc.input_ids, "labels": enc.labels})
        if modality:
            rows[-1][modality] = media_for(model, modality, 1)[0]
    return Collator(tokenizer.pad_token_id)(rows)


@pytest.mark.parametrize("modality", ["image", "video", "audio", None])
def test_forward_backward_each_modality(tiny, modality):
    _, tokenizer, model = tiny
    model.train()
    model.zero_grad()
    out = model(**batch_for(tokenizer, model, modality))
    assert torch.isfinite(out.loss) and out.loss.item() > 0
    out.loss.backward()
    assert model.lm.get_input_embeddings().weight.grad.abs().sum() > 0
    for name, projector in model.projectors.items():
        grad = projector[0].weight.grad
        if name == modality:
            assert grad is not None and grad.abs().sum() > 0, name
        else:
            assert grad is None or grad.abs().sum() == 0, name  # no media of that kind in the batch
    for encoder in (model.vision, model.audio):
        assert all(p.grad is None for p in encoder.parameters())


def test_mixed_batch_scatters_features_in_sample_order(tiny):
    """Media features land on their own sample's placeholders: changing sample 1's image changes
    only sample 1's logits."""
    _, tokenizer, model = tiny
    model.eval()
    batch = batch_for(tokenizer, model, "image", 2)
    with torch.no_grad():
        a = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        batch["image"] = batch["image"].clone()
        batch["image"][1] = torch.randn_like(batch["image"][1])
        b = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    assert torch.allclose(a[0], b[0])
    assert not torch.allclose(a[1], b[1])


def test_placeholder_count_must_match_media(tiny):
    _, tokenizer, model = tiny
    batch = batch_for(tokenizer, model, "audio", 2)
    batch["audio"] = batch["audio"][:1]
    with pytest.raises(ValueError, match="placeholder tokens"):
        model(**batch)


def test_encoders_frozen_after_optimizer_steps(tiny):
    config, tokenizer, _ = tiny
    model = ACMModel.build(config, tokenizer)
    before_v = {k: v.clone() for k, v in model.vision.state_dict().items()}
    before_a = {k: v.clone() for k, v in model.audio.state_dict().items()}
    before_p = model.projectors["image"][0].weight.clone()
    before_lm = model.lm.get_input_embeddings().weight.clone()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert not any(p.requires_grad for p in model.vision.parameters())
    assert not any(p.requires_grad for p in model.audio.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.01)
    model.train()
    for modality in ("image", "video", "audio"):
        optimizer.zero_grad()
        model(**batch_for(tokenizer, model, modality)).loss.backward()
        optimizer.step()
    assert all(torch.equal(before_v[k], v) for k, v in model.vision.state_dict().items())
    assert all(torch.equal(before_a[k], v) for k, v in model.audio.state_dict().items())
    assert not torch.equal(before_p, model.projectors["image"][0].weight)
    assert not torch.equal(before_lm, model.lm.get_input_embeddings().weight)
    assert not model.vision.training and not model.audio.training  # no dropout in frozen encoders


def test_labels_only_on_target(tiny):
    _, tokenizer, model = tiny
    target = "Two dogs run along the beach."
    enc = encode(tokenizer, "Be brief.", "Some dogs on sand.", 4, "image", target, 256)
    ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    learned = [label for label in enc.labels if label != -100]
    assert learned == ids
    n_prompt = len(enc.input_ids) - len(ids)
    assert enc.labels[:n_prompt] == [-100] * n_prompt
    assert enc.input_ids[n_prompt:] == ids
    media_id = tokenizer.convert_tokens_to_ids(MEDIA_TOKENS["image"])
    assert enc.input_ids[:4] == [media_id] * 4
    # over-long: the draft is cut first, the request and the target survive
    long = encode(tokenizer, "Be brief.", "word " * 400, 0, None, target, 120)
    assert long.truncated and len(long.input_ids) == 120
    assert [label for label in long.labels if label != -100] == ids


def test_save_load_identical_logits_and_generation(tiny, tmp_path):
    _, tokenizer, model = tiny
    model.eval()
    model.save_pretrained(tmp_path, processor=model.media_processor())
    tokenizer.save_pretrained(str(tmp_path))
    loaded, tok2, processor = ACMModel.from_pretrained(tmp_path)
    loaded.eval()
    assert processor.image is not None and processor.audio is not None
    for modality in ("image", "video", "audio"):
        batch = batch_for(tokenizer, model, modality)
        with torch.no_grad():
            assert torch.equal(model(**batch).logits, loaded(**batch).logits)
    assert tok2("A red kite", add_special_tokens=False)["input_ids"] == \
        tokenizer("A red kite", add_special_tokens=False)["input_ids"]


def test_batched_greedy_generation_matches_single(tiny):
    """Left padding must not change what each item decodes to."""
    _, tokenizer, model = tiny
    model.eval()
    prompts = [encode(tokenizer, "Be brief.", d, 0, None, None, 256).input_ids for d in ("A kite.", TEXTS[1])]
    pad = tokenizer.pad_token_id
    width = max(map(len, prompts))
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    both = model.generate(ids, mask, 8, tokenizer.eos_token_id, pad)
    for row, p in zip(both, prompts):
        one = model.generate(torch.tensor([p]), torch.ones(1, len(p), dtype=torch.long), 8,
                             tokenizer.eos_token_id, pad)[0]
        assert row[:len(one)].tolist() == one.tolist()


def test_pretrained_components_from_local_folders(tmp_path):
    """`pretrained:` takes HF ids or paths; local folders written by save_pretrained stand in for the
    Hub here: full SigLIP (vision tower kept), full Whisper (encoder kept), a Qwen2 LM + tokenizer."""
    from anycapeval.acm.features import audio_processor_for, image_processor_for
    from anycapeval.acm.train import build_tokenizer
    from transformers import AutoConfig, AutoModelForCausalLM, SiglipModel, WhisperModel

    tiny = load_config("tiny").model
    siglip_cfg = AutoConfig.for_model("siglip", vision_config=tiny.vision.config,
                                      text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                                   "num_attention_heads": 2, "vocab_size": 64})
    siglip = SiglipModel(siglip_cfg)
    siglip.save_pretrained(tmp_path / "siglip")
    image_processor_for(siglip_cfg.vision_config).save_pretrained(tmp_path / "siglip")
    whisper_raw = dict(tiny.audio.config)
    whisper = WhisperModel(AutoConfig.for_model(whisper_raw.pop("model_type"), **whisper_raw))
    whisper.save_pretrained(tmp_path / "whisper")
    audio_processor_for(whisper.config).save_pretrained(tmp_path / "whisper")
    lm_raw = dict(tiny.lm.config)
    AutoModelForCausalLM.from_config(AutoConfig.for_model(lm_raw.pop("model_type"), **lm_raw)).save_pretrained(
        tmp_path / "lm")
    train_bpe(TEXTS, 300).save_pretrained(str(tmp_path / "lm"))

    config = parse_config({"model": {"vision": {"pretrained": str(tmp_path / "siglip")},
                                     "audio": {"pretrained": str(tmp_path / "whisper")},
                                     "lm": {"pretrained": str(tmp_path / "lm")}, "image_tokens": 4,
                                     "frame_tokens": 2, "video_frames": 2, "audio_tokens": 4}}, "inline")
    tokenizer = build_tokenizer(config, [])
    model = ACMModel.build(config, tokenizer)
    def patch_weight(module):  # the key prefix differs between transformers versions
        return next(v for k, v in module.state_dict().items() if k.endswith("embeddings.patch_embedding.weight"))

    assert torch.equal(patch_weight(model.vision), patch_weight(siglip.vision_model))
    assert torch.equal(model.audio.state_dict()["conv1.weight"], whisper.state_dict()["encoder.conv1.weight"])
    processor = model.media_processor()
    assert processor.audio.feature_size == 16
    out = model(**batch_for(tokenizer, model, "video"))
    assert torch.isfinite(out.loss)
    model.save_pretrained(tmp_path / "acm", processor=processor)  # inline configs: reloads with no Hub access
    tokenizer.save_pretrained(str(tmp_path / "acm"))
    loaded = ACMModel.from_pretrained(tmp_path / "acm")[0]
    assert loaded.acm_config.model.vision.config["model_type"] == "siglip_vision_model"


@pytest.mark.parametrize("raw, field", [
    ({"model": {"lm": {"config": {"hidden_size": 8}}}}, "model.lm"),
    ({"model": {"lm": {"pretrained": "x", "config": {"model_type": "qwen2"}}}}, "model.lm"),
    ({"model": {"lm": {"pretrained": "x"}}, "data": {"ratio": {"wrong": 1}}}, "data"),
    ({"model": {"lm": {"pretrained": "x"}}, "train": {"epoch": 3}}, "train.epoch"),
])
def test_config_errors_name_the_field(raw, field):
    with pytest.raises(InputError) as info:
        parse_config(raw, "my.yaml")
    assert info.value.where == "my.yaml" and info.value.field.startswith(field)


def test_shipped_configs_validate():
    import json
    from pathlib import Path

    import anycapeval.acm as acm_pkg

    base = load_config("base_0p5b")
    assert base.model.lm.pretrained == "Qwen/Qwen2.5-0.5B-Instruct" and base.train.max_length == 4096
    assert (base.train.weight_decay, base.train.warmup_ratio, base.train.epochs) == (0.01, 0.03, 3)
    ds = json.loads((Path(acm_pkg.__file__).parent / "configs" / "deepspeed_zero2.json").read_text())
    assert ds["zero_optimization"]["stage"] == 2
