"""Deterministic generation of the demo media files: PNG images, short MP4 clips and 16 kHz WAV audio.

The content of every file is defined in :mod:`anycapeval.demo.scenes`; this module only writes it.
"""

from __future__ import annotations

import functools
import os
import pathlib
from collections.abc import Callable
from fractions import Fraction

import numpy as np
from PIL import Image

from anycapeval.demo.scenes import FPS, GENERATORS, N_FRAMES, SR, H, W

DEMO_MEDIA_VERSION = "1"

# modality -> the file names ensure_demo_media creates under target_dir/<modality>/
DEMO_MEDIA: dict[str, tuple[str, ...]] = {m: tuple(table) for m, table in GENERATORS.items()}


@functools.lru_cache(maxsize=1)
def video_codec() -> str:
    """H.264 (libx264) when this PyAV build can open it, else MPEG-4 part 2."""
    import av

    try:
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = W, H, "yuv420p"
        ctx.time_base = Fraction(1, FPS)
        ctx.open()
        return "libx264"
    except Exception:
        return "mpeg4"


def _write_image(path: pathlib.Path, draw: Callable[[], Image.Image]) -> None:
    draw().save(path, format="PNG")


def _write_video(path: pathlib.Path, frame_fn: Callable[[int], Image.Image]) -> None:
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(video_codec(), rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        if video_codec() == "libx264":
            stream.options = {"preset": "veryfast", "crf": "23", "threads": "1"}
        for t in range(N_FRAMES):
            frame = av.VideoFrame.from_ndarray(np.asarray(frame_fn(t).convert("RGB")), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))  # flush the encoder


def _write_audio(path: pathlib.Path, synth: Callable[[], np.ndarray]) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(synth(), -1, 1).astype(np.float32), SR, format="WAV", subtype="PCM_16")


_WRITERS: dict[str, Callable[[pathlib.Path, Callable], None]] = {
    "image": _write_image,
    "video": _write_video,
    "audio": _write_audio,
}


def ensure_demo_media(target_dir: pathlib.Path) -> pathlib.Path:
    """Create any missing demo media under target_dir/{image,video,audio}/ and return target_dir.

    Existing files are kept. Each file is written under a temporary name and moved into place with
    os.replace, so an interrupted run never leaves a half-written file behind under the real name.
    """
    target_dir = pathlib.Path(target_dir)
    for modality, table in GENERATORS.items():
        for name, generator in table.items():
            path = target_dir / modality / name
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
            try:
                _WRITERS[modality](tmp, generator)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
    return target_dir
