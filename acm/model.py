"""The ACM network (paper Fig. 2b): frozen encoders -> one MLP projector per modality -> a causal LM.

Media features replace placeholder tokens in the embedded prompt (one token id per modality, a fixed
number of positions per item), so a batch may mix images, videos, audio and text-only samples and
the LM sees one ordinary sequence. Encoder outputs are average-pooled to a fixed token count to keep
sequences bounded whatever the encoder's patch or frame count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import ACMConfig, Component, ModelConfig
from .features import MediaProcessor, audio_processor_for, image_processor_for
from .text import MEDIA_TOKENS

CONFIG_FILE = "acm_config.json"  # not config.json: the Trainer would read that as a transformers config
WEIGHTS_FILE = "model.safetensors"
VISION_CLASSES = {"siglip": "SiglipVisionModel", "siglip_vision_model": "SiglipVisionModel",
                  "clip": "CLIPVisionModel", "clip_vision_model": "CLIPVisionModel"}


def _hf_config(component: Component) -> Any:
    from transformers import AutoConfig

    if component.config is not None:
        raw = dict(component.config)
        return AutoConfig.for_model(raw.pop("model_type"), **raw)
    return AutoConfig.from_pretrained(str(component.pretrained))


def build_vision(component: Component) -> Any:
    import transformers

    config = _hf_config(component)
    config = getattr(config, "vision_config", config)  # a full SigLIP/CLIP checkpoint: keep its vision tower
    if config.model_type not in VISION_CLASSES:
        raise ValueError(f"vision model_type {config.model_type!r} is not supported (use SigLIP or CLIP)")
    cls = getattr(transformers, VISION_CLASSES[config.model_type])
    return cls.from_pretrained(component.pretrained) if component.pretrained else cls(config)


def build_audio(component: Component) -> Any:
    from transformers import WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    config = _hf_config(component)
    if config.model_type != "whisper":
        raise ValueError(f"audio model_type {config.model_type!r} is not supported (use a Whisper model)")
    if component.pretrained:
        return WhisperModel.from_pretrained(component.pretrained).get_encoder()  # the decoder is dropped
    return WhisperEncoder(config)


def build_lm(component: Component) -> Any:
    from transformers import AutoModelForCausalLM

    if component.pretrained:
        return AutoModelForCausalLM.from_pretrained(component.pretrained)
    return AutoModelForCausalLM.from_config(_hf_config(component))


class Projector(nn.Sequential):
    def __init__(self, d_in: int, d_out: int, layers: int):
        modules: list[nn.Module] = [nn.Linear(d_in, d_out)]
        for _ in range(layers - 1):
            modules += [nn.GELU(), nn.Linear(d_out, d_out)]
        super().__init__(*modules)


def _pool(hidden: torch.Tensor, n: int) -> torch.Tensor:
    """(batch, seq, dim) -> (batch, n, dim) by average pooling along the sequence."""
    return F.adaptive_avg_pool1d(hidden.transpose(1, 2), n).transpose(1, 2)


class ACMModel(nn.Module):
    """Encoders + projectors + LM. Build with `ACMModel.build(config, tokenizer)` or load a checkpoint
    with `ACMModel.from_pretrained(dir)`."""

    main_input_name = "input_ids"
    vision: Any  # transformers modules: typed loosely, their configs differ per family
    audio: Any
    lm: Any

    def __init__(self, config: ACMConfig, vision: Any, audio: Any, lm: Any, media_token_ids: dict[str, int]):
        super().__init__()
        self.acm_config = config
        self.vision, self.audio, self.lm = vision, audio, lm
        self.media_token_ids = media_token_ids
        cfg: ModelConfig = config.model
        d_lm = lm.config.hidden_size
        projectors = {}
        if vision is not None:
            d_v = vision.config.hidden_size
            projectors["image"] = Projector(d_v, d_lm, cfg.projector_layers)
            projectors["video"] = Projector(d_v, d_lm, cfg.projector_layers)
        if audio is not None:
            projectors["audio"] = Projector(audio.config.d_model, d_lm, cfg.projector_layers)
        self.projectors = nn.ModuleDict(projectors)
        self.tokens_per_item = {"image": cfg.image_tokens, "video": cfg.frame_tokens * cfg.video_frames,
                                "audio": cfg.audio_tokens}
        if cfg.freeze_encoders:
            for encoder in (vision, audio):
                if encoder is not None:
                    encoder.requires_grad_(False)

    # -- construction ---------------------------------------------------------------------------------

    @classmethod
    def build(cls, config: ACMConfig, tokenizer: Any) -> ACMModel:
        """Fresh model: encoders and LM from their ids (or random from inline configs), new projectors."""
        cfg = config.model
        vision = build_vision(cfg.vision) if cfg.vision else None
        audio = build_audio(cfg.audio) if cfg.audio else None
        lm = build_lm(cfg.lm)
        if lm.get_input_embeddings().num_embeddings < len(tokenizer):  # added media/pad tokens
            lm.resize_token_embeddings(len(tokenizer))
        ids = {m: tokenizer.convert_tokens_to_ids(t) for m, t in MEDIA_TOKENS.items()}
        return cls(config, vision, audio, lm, ids)

    def media_processor(self) -> MediaProcessor:
        """Preprocessing for a freshly built model: the pretrained encoder's own processor, or one
        derived from an inline config. (A loaded checkpoint brings its saved processors.)"""
        from transformers import AutoImageProcessor, WhisperFeatureExtractor

        cfg = self.acm_config.model
        image = audio = None
        if self.vision is not None:
            vision_id = cfg.vision.pretrained if cfg.vision else None
            image = AutoImageProcessor.from_pretrained(vision_id) if vision_id \
                else image_processor_for(self.vision.config)
        if self.audio is not None:
            audio_id = cfg.audio.pretrained if cfg.audio else None
            audio = WhisperFeatureExtractor.from_pretrained(audio_id) if audio_id \
                else audio_processor_for(self.audio.config)
        return MediaProcessor(image, audio, cfg.video_frames)

    def resolved_config(self) -> ACMConfig:
        """The run's config with every component as an inline config, so a checkpoint rebuilds offline."""
        def inline(module: Any) -> Component | None:
            return Component(config=module.config.to_dict()) if module is not None else None

        model = self.acm_config.model.model_copy(update={
            "vision": inline(self.vision), "audio": inline(self.audio), "lm": inline(self.lm),
            "tokenizer": self.acm_config.model.tokenizer.model_copy(update={"pretrained": None})})
        return self.acm_config.model_copy(update={"model": model})

    def save_pretrained(self, directory: str | Path, state_dict: dict[str, torch.Tensor] | None = None,
                        processor: MediaProcessor | None = None, extra: dict[str, Any] | None = None) -> None:
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = state_dict if state_dict is not None else self.state_dict()
        # tied LM head and embeddings share storage; safetensors wants distinct tensors
        seen: set[int] = set()
        tensors = {}
        for name, tensor in state.items():
            ptr = tensor.data_ptr()
            tensors[name] = tensor.detach().clone().contiguous() if ptr in seen else tensor.detach().contiguous()
            seen.add(ptr)
        save_file(tensors, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
        meta = {"acm": self.resolved_config().model_dump(mode="json"), "media_token_ids": self.media_token_ids,
                **(extra or {})}
        (out / CONFIG_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        (processor or self.media_processor()).save(out)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> tuple[ACMModel, Any, MediaProcessor]:
        """(model, tokenizer, media processor) from a checkpoint written by `save_pretrained`."""
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        path = Path(directory)
        meta = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        config = ACMConfig.model_validate(meta["acm"])
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        cfg = config.model
        vision = build_vision(cfg.vision) if cfg.vision else None
        audio = build_audio(cfg.audio) if cfg.audio else None
        lm = build_lm(cfg.lm)
        model = cls(config, vision, audio, lm, {k: int(v) for k, v in meta["media_token_ids"].items()})
        missing, unexpected = model.load_state_dict(load_file(str(path / WEIGHTS_FILE)), strict=False)
        tied = set(getattr(lm, "_tied_weights_keys", None) or [])
        missing = [k for k in missing if k.removeprefix("lm.") not in tied]
        if missing or unexpected:
            raise ValueError(f"{path / WEIGHTS_FILE}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        if getattr(lm.config, "tie_word_embeddings", False):
            lm.tie_weights()
        return model, tokenizer, MediaProcessor.load(path, cfg.video_frames)

    # -- training hooks the HF Trainer calls ------------------------------------------------------------

    def train(self, mode: bool = True) -> ACMModel:
        super().train(mode)
        for encoder in (self.vision, self.audio):  # frozen encoders stay deterministic (no dropout)
            if encoder is not None and self.acm_config.model.freeze_encoders:
                encoder.eval()
        return self

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs: dict[str, Any] | None = None,
                                        **options: Any) -> None:
        """Checkpoint the LM's layers (the encoders run without gradients anyway)."""
        kwargs = activation_checkpointing_kwargs or {"use_reentrant": False}
        enable = getattr(self.lm, "activation_checkpointing_enable", None)  # transformers >= 5
        if enable is not None:
            enable(activation_checkpointing_kwargs=kwargs, **options)
        else:
            self.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict[str, Any] | None = None,
                                      **options: Any) -> None:
        """The name transformers 4.x's Trainer calls."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **options)

    # -- forward ------------------------------------------------------------------------------------------

    def encode_media(self, modality: str, tensor: torch.Tensor) -> torch.Tensor:
        """(items, ...) -> (items, tokens_per_item, lm hidden)."""
        cfg = self.acm_config.model
        frozen = cfg.freeze_encoders
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            if modality == "image":
                assert self.vision is not None
                hidden = _pool(self.vision(pixel_values=tensor).last_hidden_state, cfg.image_tokens)
            elif modality == "video":
                assert self.vision is not None
                n, frames = tensor.shape[:2]
                per_frame = self.vision(pixel_values=tensor.flatten(0, 1)).last_hidden_state
                hidden = _pool(per_frame, cfg.frame_tokens).reshape(n, frames * cfg.frame_tokens, -1)
            else:
                assert self.audio is not None
                hidden = _pool(self.audio(tensor).last_hidden_state, cfg.audio_tokens)
        projector = self.projectors[modality]
        return projector(hidden.to(next(projector.parameters()).dtype))

    def embed(self, input_ids: torch.Tensor, media: dict[str, torch.Tensor]) -> torch.Tensor:
        embeds = self.lm.get_input_embeddings()(input_ids)
        for modality, token_id in self.media_token_ids.items():
            slots = input_ids == token_id
            n_slots = int(slots.sum())
            tensor = media.get(modality)
            n_items = 0 if tensor is None else tensor.shape[0]
            if n_slots != n_items * self.tokens_per_item[modality]:
                raise ValueError(f"{modality}: {n_slots} placeholder tokens for {n_items} items "
                                 f"x {self.tokens_per_item[modality]} tokens each")
            if n_items:
                assert tensor is not None
                features = self.encode_media(modality, tensor).to(embeds.dtype)
                embeds = embeds.masked_scatter(slots.unsqueeze(-1), features)
        return embeds

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, image: torch.Tensor | None = None,
                video: torch.Tensor | None = None, audio: torch.Tensor | None = None, **kwargs: Any) -> Any:
        media = {k: v for k, v in (("image", image), ("video", video), ("audio", audio)) if v is not None}
        embeds = self.embed(input_ids, media)
        return self.lm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **kwargs)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                 eos_token_id: int, pad_token_id: int, **media: torch.Tensor) -> torch.Tensor:
        """Greedy decoding of a left-padded batch; returns only the new tokens."""
        embeds = self.embed(input_ids, {k: v for k, v in media.items() if v is not None})
        return self.lm.generate(inputs_embeds=embeds, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                                do_sample=False, num_beams=1, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                                use_cache=True)
