"""The shared media decoders: images (EXIF, resize), video frames (count, fps, timestamps), audio
(mono, resampling, the PyAV fallback), and MediaError naming the file for anything unusable."""

from fractions import Fraction

import numpy as np
import pytest

from anycapeval import media
from anycapeval.media import MediaError
from anycapeval.readers.anycapeval import demo_root


@pytest.fixture(scope="module")
def demo():
    return demo_root()


def test_load_image_applies_exif_orientation_and_max_side(tmp_path):
    from PIL import Image

    image = Image.new("RGB", (200, 100), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    loaded = media.load_image(path)
    assert loaded.size == (100, 200) and loaded.mode == "RGB"
    assert media.load_image(path, max_side=50).size == (25, 50)
    Image.new("RGBA", (10, 10)).save(tmp_path / "alpha.png")
    assert media.load_image(tmp_path / "alpha.png").mode == "RGB"


def test_sample_video_frames_by_count_and_by_fps(demo):
    clip = demo / "video" / "ball_roll.mp4"  # 2 s, 10 fps
    frames = media.sample_video_frames(clip, n=5, max_side=64)
    assert len(frames.frames) == 5 and frames.duration == pytest.approx(2.0, abs=0.11)
    assert frames.timestamps == sorted(frames.timestamps) and frames.timestamps[0] == 0.0
    assert frames.timestamps[-1] == pytest.approx(1.9, abs=0.01) and max(frames.frames[0].size) == 64
    at_2fps = media.sample_video_frames(clip, fps=2)
    assert at_2fps.timestamps == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=0.01)
    assert len(media.sample_video_frames(clip, n=100).frames) == 20  # never more frames than the clip has
    # frames differ over time (the ball moves): they are really different frames
    first, last = (np.asarray(f, dtype=float) for f in (frames.frames[0], frames.frames[-1]))
    assert np.abs(first - last).mean() > 1.0


def test_load_audio_mixes_down_resamples_and_falls_back_to_pyav(tmp_path):
    import av
    import soundfile as sf

    t = np.arange(22050) / 22050
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1).astype(np.float32) * 0.5
    sf.write(tmp_path / "stereo.wav", stereo, 22050)
    mono = media.load_audio(tmp_path / "stereo.wav", 22050)
    assert mono.dtype == np.float32 and mono.shape == (22050,)
    assert np.abs(mono).max() == pytest.approx(0.25, abs=0.01)  # the mean of the two channels
    assert media.load_audio(tmp_path / "stereo.wav", 16000).shape == (16000,)
    # AAC in an .m4a: soundfile cannot read it, PyAV can
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        for start in range(0, 16000, 1024):
            chunk = np.sin(2 * np.pi * 440 * np.arange(start, start + 1024) / 16000).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    decoded = media.load_audio(path, 16000)
    assert abs(len(decoded) - 16000) < 2048 and np.abs(decoded).max() > 0.5
    data, fmt = media.audio_payload(path)
    assert fmt == "wav" and len(data) > 1000


def test_unusable_media_raise_media_error_naming_the_file(tmp_path, demo):
    video = (demo / "video" / "ball_roll.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(video[: len(video) // 3])
    (tmp_path / "noise.wav").write_bytes(b"definitely not audio" * 50)
    png = (demo / "image" / "sunny_house.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(png[:200])
    cases = [
        (lambda: media.sample_video_frames(tmp_path / "cut.mp4"), "cut.mp4", "not a readable video"),
        (lambda: media.load_audio(tmp_path / "noise.wav", 16000), "noise.wav", "not readable audio"),
        (lambda: media.audio_payload(tmp_path / "noise.wav"), "noise.wav", "not readable audio"),
        (lambda: media.load_image(tmp_path / "cut.png"), "cut.png", "not a readable image"),
        (lambda: media.load_image(tmp_path / "absent.jpg"), "absent.jpg", "not found"),
        (lambda: media.load_audio(demo / "video" / "ball_roll.mp4", 16000), "ball_roll.mp4", "no audio stream"),
        (lambda: media.media_hash(tmp_path / "absent.jpg"), "absent.jpg", "No such file"),
    ]
    for call, name, reason in cases:
        with pytest.raises(MediaError) as err:
            call()
        assert name in str(err.value) and reason in str(err.value)


def test_media_hash_follows_content(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"one")
    first = media.media_hash(path)
    path.write_bytes(b"two!")
    assert media.media_hash(path) != first and len(first) == 16
