"""Media decoding shared by systems, judges and the ACM refiner: images, video frames, audio, hashes.

Every decoder raises `MediaError` naming the file and the reason, so a missing or corrupt file
becomes that item's `generation_error` (or `judge_error`) instead of stopping a run. Decoding is
local and lazy: Pillow for images, PyAV for video and for audio soundfile cannot read, librosa
only when audio must be resampled.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .types import AnyCapError

if TYPE_CHECKING:
    from PIL import Image as PILImage

DEFAULT_VIDEO_FRAMES = 8


class MediaError(AnyCapError):
    """A media file that cannot be used: absent, unreadable, or not the kind it should be."""

    def __init__(self, path: Path | str | None, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"media file {path}: {reason}")


@lru_cache(maxsize=4096)
def _hash_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def media_hash(path: Path) -> str:
    """Content hash (16 hex digits) for cache keys; memoised on (path, size, mtime)."""
    try:
        stat = path.stat()
        return _hash_cached(str(path), stat.st_size, stat.st_mtime_ns)
    except OSError as exc:
        raise MediaError(path, exc.strerror or str(exc)) from None


def _require(path: Path | None) -> Path:
    if path is None:
        raise MediaError(None, "no media file for this item")
    if not path.is_file():
        raise MediaError(path, "not found")
    return path


def _shrink(image: PILImage.Image, max_side: int | None) -> PILImage.Image:
    if max_side and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    return image


def load_image(path: Path, max_side: int | None = None) -> PILImage.Image:
    """RGB image with its EXIF orientation applied, shrunk to `max_side` pixels on its longer side."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = _require(path)
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later in a model
            rgb = ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise MediaError(path, f"not a readable image ({exc})") from None
    return _shrink(rgb, max_side)


@dataclass(frozen=True)
class VideoFrames:
    """Frames sampled from a clip, in order, with their presentation times in seconds."""

    frames: list[PILImage.Image]
    timestamps: list[float]
    duration: float


def _pick(times: list[float], n: int | None, fps: float | None, duration: float) -> list[int]:
    """Indices into the sorted frame times: `n` evenly spread frames, or one per 1/fps seconds
    (thinned evenly to `n` when both are given)."""
    count = len(times)
    if fps:
        targets = np.arange(times[0], times[0] + max(duration, 1e-9), 1.0 / fps)
        picks = sorted({int(np.abs(np.asarray(times) - t).argmin()) for t in targets})
        if n and len(picks) > n:
            picks = [picks[i] for i in np.linspace(0, len(picks) - 1, n).round().astype(int)]
        return picks
    wanted = n or DEFAULT_VIDEO_FRAMES
    return sorted(set(np.linspace(0, count - 1, min(wanted, count)).round().astype(int).tolist()))


def sample_video_frames(path: Path, n: int | None = None, fps: float | None = None,
                        max_side: int | None = None) -> VideoFrames:
    """`n` evenly spaced frames (default 8), or frames at `fps`, as RGB PIL images.

    Two passes keep memory flat on long clips: demuxing (no decoding) gives every frame's time,
    then one decoding pass keeps only the chosen frames."""
    import av

    path = _require(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(path, "no video stream")
            stream = container.streams.video[0]
            base = stream.time_base
            pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None and p.size)
            if not pts or base is None:
                raise MediaError(path, "no video frames")
            times = [float(p * base) for p in pts]
            if stream.duration is not None:
                duration = float(stream.duration * base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = times[-1] - times[0]
            picks = set(_pick(times, n, fps, duration))
            container.seek(0, stream=stream)
            frames, stamps = [], []
            for index, frame in enumerate(container.decode(stream)):
                if index in picks:
                    frames.append(_shrink(frame.to_image().convert("RGB"), max_side))
                    stamps.append(float(frame.time if frame.time is not None else times[index]))
                if index >= max(picks):
                    break
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(path, f"not a readable video ({exc})") from None
    if not frames:
        raise MediaError(path, "no decodable video frames")
    return VideoFrames(frames, stamps, duration)


def image_to_data_url(image: PILImage.Image, max_side: int | None) -> str:
    buf = io.BytesIO()
    _shrink(image.convert("RGB"), max_side).save(buf, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def image_data_url(path: Path, max_side: int | None = 1024) -> str:
    return image_to_data_url(load_image(path), max_side)


def video_frame_urls(path: Path, n: int = DEFAULT_VIDEO_FRAMES, max_side: int | None = 768) -> list[tuple[float, str]]:
    """(timestamp seconds, JPEG data URL) for `n` evenly spaced frames."""
    sampled = sample_video_frames(path, n=n, max_side=max_side)
    return [(t, image_to_data_url(img, None)) for t, img in zip(sampled.timestamps, sampled.frames)]


def _decode_with_av(path: Path) -> tuple[np.ndarray, int]:
    import av

    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise MediaError(path, "no audio stream")
        stream = container.streams.audio[0]
        rate = int(stream.rate or 0)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate or None)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
                rate = out.sample_rate
    if not chunks:
        raise MediaError(path, "no audio samples")
    return np.concatenate(chunks).astype(np.float32), rate


def _read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples at the file's own rate: soundfile first, PyAV for what it cannot read
    (mp3/m4a/video containers)."""
    import soundfile as sf

    path = _require(path)
    data: Any
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        data = data.mean(axis=1)
    except (sf.LibsndfileError, RuntimeError, TypeError) as first:
        import av

        try:
            data, rate = _decode_with_av(path)
        except MediaError:
            raise
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise MediaError(path, f"not readable audio (soundfile: {first}; PyAV: {exc})") from None
    if data.size == 0:
        raise MediaError(path, "no audio samples")
    return data, int(rate)


def load_audio(path: Path, sampling_rate: int) -> np.ndarray:
    """Mono float32 samples at `sampling_rate` Hz (librosa resamples when the file's rate differs)."""
    data, rate = _read_audio(path)
    if rate != sampling_rate:
        import librosa

        data = librosa.resample(data, orig_sr=rate, target_sr=sampling_rate)
    return np.ascontiguousarray(data, dtype=np.float32)


def audio_payload(path: Path) -> tuple[str, str]:
    """(base64 data, format) for an OpenAI `input_audio` part. The file is decoded first, so bytes
    that are not audio fail here; WAV and MP3 are sent as they are, anything else as WAV."""
    import soundfile as sf

    data, rate = _read_audio(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("wav", "mp3"):
        return base64.b64encode(path.read_bytes()).decode(), suffix
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="WAV")
    return base64.b64encode(buf.getvalue()).decode(), "wav"
