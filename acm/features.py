"""Media -> encoder input tensors (pixel values, video frame stacks, log-mel features).

The processors are saved inside every checkpoint, so refinement uses exactly the preprocessing the
model was trained with and never needs the Hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..types import AnyCapError

SAMPLING_RATE = 16000  # Whisper's


def _pil_first(name: str) -> Any:
    """transformers >= 5 splits image processors by backend; the PIL one needs no torchvision."""
    import transformers

    return getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)


def image_processor_for(vision_config: Any) -> Any:
    size = int(vision_config.image_size)
    if vision_config.model_type.startswith("clip"):
        return _pil_first("CLIPImageProcessor")(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return _pil_first("SiglipImageProcessor")(size={"height": size, "width": size})


def audio_processor_for(audio_config: Any) -> Any:
    """Whisper needs exactly 2 * max_source_positions mel frames (3000 = 30 s for real models)."""
    from transformers import WhisperFeatureExtractor

    frames = 2 * int(audio_config.max_source_positions)
    return WhisperFeatureExtractor(feature_size=int(audio_config.num_mel_bins), sampling_rate=SAMPLING_RATE,
                                   chunk_length=max(1, frames * 160 // SAMPLING_RATE))


class MediaProcessor:
    """Turns decoded media into the tensors the frozen encoders take."""

    def __init__(self, image: Any, audio: Any, video_frames: int):
        self.image, self.audio, self.video_frames = image, audio, video_frames

    def pixels(self, images: list[Any]) -> Any:
        return self.image(images=images, return_tensors="pt")["pixel_values"]

    def video(self, frames: list[Any]) -> Any:
        """Exactly `video_frames` frames, evenly spread (short clips repeat frames)."""
        import numpy as np

        if not frames:
            raise AnyCapError("a video with no frames")
        picks = np.linspace(0, len(frames) - 1, self.video_frames).round().astype(int)
        return self.pixels([frames[i] for i in picks])

    def mel(self, waveform: Any) -> Any:
        return self.audio(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")["input_features"][0]

    def save(self, directory: Path) -> None:
        if self.image is not None:
            self.image.save_pretrained(directory / "image_processor")
        if self.audio is not None:
            self.audio.save_pretrained(directory / "audio_processor")

    @classmethod
    def load(cls, directory: Path, video_frames: int) -> MediaProcessor:
        from transformers import AutoImageProcessor, WhisperFeatureExtractor

        image = AutoImageProcessor.from_pretrained(directory / "image_processor") \
            if (directory / "image_processor").is_dir() else None
        audio = WhisperFeatureExtractor.from_pretrained(directory / "audio_processor") \
            if (directory / "audio_processor").is_dir() else None
        return cls(image, audio, video_frames)


def load_media(modality: str, path: Path, processor: MediaProcessor) -> Any:
    """One media file -> its encoder tensor, via the shared decoders in anycapeval.media."""
    from .. import media

    if modality == "image":
        return processor.pixels([media.load_image(path)])[0]
    if modality == "video":
        return processor.video(media.sample_video_frames(path, n=processor.video_frames).frames)
    return processor.mel(media.load_audio(path, SAMPLING_RATE))
