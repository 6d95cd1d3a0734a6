"""`hf:<path or hub id>`: a local transformers captioner, batched, greedy by default.

Image and video models load through `AutoModelForImageTextToText` (Qwen2.5-VL, LLaVA, LLaVA-OneVision,
SmolVLM, Gemma 3, ...), audio-capable ones through `AutoModelForMultimodalLM` (Qwen2-Audio style).
The prompt is the processor's own chat template around the item's instruction. Videos go in as a
video where the processor has a video input, else as timestamped frames. The model loads on the
first generation, so a fully cached re-run never loads it; torch is imported only here.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from ..distributed import local_device
from ..media import MediaError, load_audio, load_image, sample_video_frames
from ..types import GENERATION_ERROR, OK, AnyCapError, Item, Prediction
from .base import SystemBase

DTYPES = ("auto", "float32", "bfloat16", "float16")


def _int(args: dict[str, str], key: str, default: int | None) -> int | None:
    value = args.get(key)
    if value is None or value.lower() == "none":
        return default if value is None else None
    if not value.isdigit() or int(value) < 1:
        raise AnyCapError(f"--model-args {key}={value!r}: expected a positive integer")
    return int(value)


def _fingerprint(source: str) -> str:
    """Local folders: names, sizes and modification times of their files, so retrained weights in the
    same folder never reuse old captions. Hub ids: the id (pin a revision by using a local snapshot)."""
    path = Path(source).expanduser()
    if not path.is_dir():
        return source
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


class HFSystem(SystemBase):
    cacheable = True
    needs_media = True

    def __init__(self, source: str, args: dict[str, str]):
        self.source = source
        self.spec = f"hf:{source}"
        self.device_arg = args.get("device", "auto")
        self.dtype_arg = args.get("dtype", "auto")
        if self.dtype_arg not in DTYPES:
            raise AnyCapError(f"--model-args dtype={self.dtype_arg!r}: use one of {', '.join(DTYPES)}")
        self.batch_size = _int(args, "batch_size", 4) or 4
        self.max_new_tokens = _int(args, "max_new_tokens", 256) or 256
        self.frames = _int(args, "frames", 8) or 8
        self.max_side = _int(args, "max_side", None)
        self.video_mode = args.get("video", "auto")
        if self.video_mode not in ("auto", "frames"):
            raise AnyCapError(f"--model-args video={self.video_mode!r}: use auto or frames")
        self.attn = args.get("attn_implementation")
        self.model_class = self._model_class()
        self.fingerprint = _fingerprint(source)
        self._loaded: tuple[Any, Any, Any] | None = None  # (model, processor, torch)

    def _model_class(self) -> str:
        """Which auto class serves this checkpoint; read from its config only (fails fast, loads no weights)."""
        from transformers import AutoConfig
        from transformers.models.auto import modeling_auto

        try:
            config = AutoConfig.from_pretrained(self.source)
        except (OSError, ValueError) as exc:
            raise AnyCapError(f"{self.spec}: cannot read the model config ({exc})") from None
        kind = config.model_type
        if kind in modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
            return "AutoModelForImageTextToText"
        if kind in modeling_auto.MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES:
            return "AutoModelForMultimodalLM"
        raise AnyCapError(f"{self.spec}: model type '{kind}' is neither an image-text-to-text nor a multimodal "
                          "(audio) model in transformers; text-only models cannot caption media")

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "hf", "source": self.source, "fingerprint": self.fingerprint, "dtype": self.dtype_arg,
                "max_new_tokens": self.max_new_tokens, "frames": self.frames, "max_side": self.max_side,
                "video": self.video_mode}

    def settings(self) -> dict[str, Any]:
        return {**self.identity, "device": self.device_arg, "batch_size": self.batch_size,
                "model_class": self.model_class, "attn_implementation": self.attn}

    # -- loading ------------------------------------------------------------------------------------

    def _load(self) -> tuple[Any, Any, Any]:
        if self._loaded is not None:
            return self._loaded
        import torch
        import transformers

        device = local_device(self.device_arg)  # under torchrun / accelerate launch: cuda:LOCAL_RANK
        dtype_name = self.dtype_arg
        if dtype_name == "auto":
            dtype_name = "bfloat16" if device.startswith("cuda") else "float32"
        kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype_name)}
        if self.attn:
            kwargs["attn_implementation"] = self.attn
        try:
            processor = transformers.AutoProcessor.from_pretrained(self.source)
            model = getattr(transformers, self.model_class).from_pretrained(self.source, **kwargs)
        except (OSError, ValueError, ImportError) as exc:  # ImportError: e.g. a video processor needs torchvision
            raise AnyCapError(f"{self.spec}: cannot load the model ({exc})") from None
        model.to(device).eval()
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # decoder-only batching: prompts end where generation starts
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
        self._loaded = (model, processor, torch)
        return self._loaded

    # -- inputs -------------------------------------------------------------------------------------

    def _prepare(self, item: Item, processor: Any) -> tuple[list[dict[str, Any]], dict[str, list[Any]]]:
        """(chat content, media by processor argument) for one item. Raises MediaError."""
        path = item.media_path
        if path is None:
            raise MediaError(item.media, "not found (pass --media-dir)")
        text = {"type": "text", "text": item.instruction}
        native_video = self.video_mode == "auto" and getattr(processor, "video_processor", None) is not None
        if item.modality in ("image", "video") and getattr(processor, "image_processor", None) is None \
                and not (item.modality == "video" and native_video):  # an audio-only model: stop, as below
            raise AnyCapError(f"{self.spec} has no image input (its processor, {type(processor).__name__}, has no "
                              f"image processor) and cannot caption the {item.modality} task {item.task}; leave "
                              "the image and video tasks out of --tasks, or use a vision-language model")
        if item.modality == "image":
            return [{"type": "image"}, text], {"images": [load_image(path, self.max_side)]}
        if item.modality == "video":
            video = sample_video_frames(path, n=self.frames, max_side=self.max_side)
            if native_video:
                return [{"type": "video"}, text], {"videos": [video.frames]}
            stamps = ", ".join(f"{t:.1f}s" for t in video.timestamps)
            intro = {"type": "text", "text": f"A {video.duration:.1f}-second video, shown as {len(video.frames)} "
                     f"frames in order, taken at {stamps}."}
            return [intro, *({"type": "image"} for _ in video.frames), text], {"images": list(video.frames)}
        extractor = getattr(processor, "feature_extractor", None)
        if extractor is None:  # a vision-only model: every audio item would fail the same way, so stop here
            raise AnyCapError(f"{self.spec} has no audio input (its processor, {type(processor).__name__}, has no "
                              f"feature extractor) and cannot caption the audio task {item.task}; leave the audio "
                              "tasks out of --tasks, or use an audio-capable model")
        rate = int(getattr(extractor, "sampling_rate", 16000))
        return [{"type": "audio"}, text], {"audio": [load_audio(path, rate)]}

    def _run(self, items: list[Item], prepared: list[tuple[list[dict[str, Any]], dict[str, list[Any]]]]
             ) -> list[tuple[str, dict[str, int]]]:
        """(caption, token usage) per item, from one batched generate call."""
        model, processor, torch = self._load()
        prompts = [processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                                 tokenize=False) for content, _ in prepared]
        media: dict[str, list[Any]] = {}
        for _, parts in prepared:
            for key, values in parts.items():
                media.setdefault(key, []).extend(values)
        extra: dict[str, Any] = {}
        if "audio" in media:
            extra["sampling_rate"] = int(processor.feature_extractor.sampling_rate)
        if "videos" in media:
            extra["do_sample_frames"] = False  # the frames are already sampled, evenly, with their timestamps
        inputs = processor(text=prompts, **media, **extra, padding=True, return_tensors="pt")
        inputs = inputs.to(model.device, dtype=model.dtype)
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        texts = processor.batch_decode(new_tokens, skip_special_tokens=True)
        pad = processor.tokenizer.pad_token_id
        prompt_lengths = inputs["attention_mask"].sum(dim=1).tolist()
        return [(text.strip(), {"prompt_tokens": int(n), "completion_tokens": int((row != pad).sum())})
                for text, n, row in zip(texts, prompt_lengths, new_tokens)]

    def _generate_sync(self, items: list[Item]) -> list[Prediction]:
        model, processor, _ = self._load()
        results: dict[int, Prediction] = {}
        ready: list[int] = []
        prepared = []
        for n, item in enumerate(items):
            try:
                prepared.append(self._prepare(item, processor))
                ready.append(n)
            except MediaError as exc:
                results[n] = Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR, str(exc))
        groups = [ready] if ready else []
        while groups:
            group = groups.pop(0)
            try:
                texts = self._run([items[n] for n in group], [prepared[ready.index(n)] for n in group])
            except (ValueError, RuntimeError, TypeError, IndexError) as exc:
                if len(group) > 1:  # find the item that breaks the batch; the others still run
                    groups[:0] = [[n] for n in group]
                    continue
                item = items[group[0]]
                results[group[0]] = Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR,
                                               f"{self.spec} failed on {item.media}: {type(exc).__name__}: {exc}")
                continue
            for n, (text, usage) in zip(group, texts):
                item = items[n]
                results[n] = Prediction(item.task, item.id, self.spec, text, OK, usage=usage) if text else \
                    Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR, "the model produced an empty "
                               "caption", usage=usage)
        return [results[n] for n in range(len(items))]

    async def generate_batch(self, items: list[Item]) -> list[Prediction]:
        return await asyncio.to_thread(self._generate_sync, items)

    async def generate(self, item: Item) -> Prediction:
        return (await self.generate_batch([item]))[0]
