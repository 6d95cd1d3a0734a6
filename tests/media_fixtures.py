"""The demo items in the official AnyCapEval layout (data dir + separate media dir), so tests can run
the `anycapeval_*` tasks on them with --data-dir/--media-dir and break individual media files."""

from __future__ import annotations

import shutil
from pathlib import Path

from anycapeval.readers.anycapeval import demo_data_root, demo_root

# official data file <- demo file
FILES = {
    "image/anycapeval_image_ref_content.jsonl": "image/demo_image_content.jsonl",
    "video/anycapeval_video_ref_style.jsonl": "video/demo_video_style.jsonl",
    "audio/anycapeval_audio_ref_content.jsonl": "audio/demo_audio_content.jsonl",
}
TASKS = "anycapeval_image_content,anycapeval_video_style,anycapeval_audio_content"


def official_layout(root: Path) -> tuple[Path, Path]:
    """(data dir, media dir) holding the demo image content, video style and audio content items."""
    data, media = root / "data", root / "media"
    for official, demo in FILES.items():
        (data / official).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(demo_data_root() / demo, data / official)
    shutil.copytree(demo_root(), media, dirs_exist_ok=True)
    return data, media


def break_media(media: Path) -> dict[str, Path]:
    """A missing image, a truncated video and a WAV that holds no audio; returns them by modality."""
    image, video, audio = media / "image" / "sunny_house.png", media / "video" / "ball_roll.mp4", \
        media / "audio" / "three_beeps.wav"
    image.unlink()
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 3])
    audio.write_bytes(b"this is not audio at all\n" * 200)
    return {"image": image, "video": video, "audio": audio}
