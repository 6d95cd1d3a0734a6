"""VidCapBench items (QA format): one JSONL record per video, `video_dir` and its `QA_pairs`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files import media_index, read_jsonl
from ..scorers.vidcap import CATEGORY_OF, DEFAULT_CAPTION_PROMPT
from ..task_config import Task
from ..types import AnyCapError, InputError, Item


def _qa_file(task: Task, data_dir: str | None) -> Path:
    name = task.config.data_file
    if not data_dir:
        raise AnyCapError(f"task {task.name}: pass --data-dir, the folder holding {name} (VidCapBench's QA files, "
                          "downloaded from the benchmark's release)")
    root = Path(data_dir).expanduser()
    if root.is_file():
        return root
    found = [root / name] if (root / name).is_file() else sorted(root.rglob(name)) if root.is_dir() else []
    if not found:
        raise AnyCapError(f"task {task.name}: {name} not found under {root}")
    return found[0]


def _qa(entry: Any, where: str) -> dict[str, str]:
    if not isinstance(entry, dict):
        raise InputError(where, "QA_pairs", "each QA pair must be an object")
    for name in ("question", "answer", "sub_category"):
        if not isinstance(entry.get(name), str) or not entry[name].strip():
            raise InputError(where, f"QA_pairs.{name}", "missing or empty")
    sub = entry["sub_category"].strip().lower()
    if sub not in CATEGORY_OF:
        raise InputError(where, "QA_pairs.sub_category", f"unknown sub-category {entry['sub_category']!r} "
                         f"(known: {', '.join(CATEGORY_OF)})")
    return {"question": entry["question"], "answer": entry["answer"], "sub_category": sub,
            "category": CATEGORY_OF[sub]}


def load_vidcap_items(task: Task, data_dir: str | None, media_dir: str | None) -> list[Item]:
    path = _qa_file(task, data_dir)
    media_root = Path(media_dir) if media_dir else path.parent
    media = media_index(media_root.resolve(), "video")
    prompt = str(task.config.options.get("caption_prompt", DEFAULT_CAPTION_PROMPT))
    items: list[Item] = []
    seen: dict[str, str] = {}
    for lineno, record in read_jsonl(path):
        where = f"{path}:{lineno}"
        video = record.get("video_dir")
        if not isinstance(video, str) or not video.strip():
            raise InputError(where, "video_dir", "missing or empty")
        name = Path(video.replace("\\", "/")).name  # one upstream file has absolute paths, the other bare names
        if name in seen:
            raise InputError(where, "video_dir", f"duplicate video {name!r} (first at {seen[name]})")
        seen[name] = where
        pairs = record.get("QA_pairs")
        if not isinstance(pairs, list):
            raise InputError(where, "QA_pairs", "missing or not a list")
        qa = [_qa(entry, where) for entry in pairs]
        items.append(Item(task=task.name, id=name, modality="video", instruction=prompt, reference="",
                          instruction_type="qa", dimension="all", length_constraint="", media=name,
                          media_path=media.get(name), source=where, extra={"qa": qa}))
    return items
