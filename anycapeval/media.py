"""Media for judges (and later systems): content hashes, image data URLs, video frames, audio payloads.

Decoding is lazy and local: Pillow for images, PyAV for video frames and non-WAV audio.
"""

from __future__ import annotations

import base64
import hashlib
import io
from functools import lru_cache
from pathlib import Path

import numpy as np


@lru_cache(maxsize=4096)
def _hash_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def media_hash(path: Path) -> str:
    stat = path.stat()
    return _hash_cached(str(path), stat.st_size, stat.st_mtime_ns)


def _jpeg_data_url(image, max_side: int | None) -> str:  # type: ignore[no-untyped-def]
    image = image.convert("RGB")
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def image_data_url(path: Path, max_side: int | None = 1024) -> str:
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return _jpeg_data_url(ImageOps.exif_transpose(image), max_side)


def video_frames(path: Path, n: int = 8) -> list[tuple[float, object]]:
    """n evenly spaced frames as (timestamp seconds, PIL image), decoded in one pass."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(float(f.time or 0.0), f.to_image()) for f in container.decode(stream)]
    if not frames:
        raise ValueError(f"{path}: no video frames")
    picks = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
    return [frames[i] for i in picks]


def video_frame_urls(path: Path, n: int = 8, max_side: int | None = 768) -> list[tuple[float, str]]:
    return [(t, _jpeg_data_url(img, max_side)) for t, img in video_frames(path, n)]


def audio_payload(path: Path) -> tuple[str, str]:
    """(base64 data, format) for an OpenAI `input_audio` part; non-WAV/MP3 input is re-encoded as WAV."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("wav", "mp3"):
        return base64.b64encode(path.read_bytes()).decode(), suffix
    import soundfile as sf

    data, rate = sf.read(str(path), always_2d=False)
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="WAV")
    return base64.b64encode(buf.getvalue()).decode(), "wav"
