"""lm-eval hooks for the anycapeval task YAMLs beside this file (loaded by lm-eval through `!function`).

Items come from anycapeval's own loader, one lm-eval doc per item. Settings reach `load_docs` through
lm-eval's `--metadata` JSON: `data_dir` (default $ANYCAPEVAL_DATA_DIR or the `anycapeval data fetch`
folder; the demo tasks need none) and `media_dir`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AUDIO_RATE = 16_000  # what Whisper-style audio encoders (Qwen2-Audio) take


def load_docs(anycapeval_task: str, data_dir: str | None = None, media_dir: str | None = None,
              **_: Any) -> dict[str, Any]:
    """{"test": Dataset} of the task's items: id, anycapeval_task, instruction, reference, dimension,
    instruction type, length constraint, media name and resolved media path ("" when not found)."""
    import datasets

    from anycapeval.data import load_items
    from anycapeval.registry import resolve_tasks

    (task,) = resolve_tasks(anycapeval_task)
    items = load_items(task, data_dir, media_dir)
    rows = [{"id": i.id, "anycapeval_task": i.task, "instruction": i.instruction, "reference": i.reference,
             "dimension": i.dimension, "instruction_type": i.instruction_type,
             "length_constraint": i.length_constraint, "media": i.media or "",
             "media_path": str(i.media_path) if i.media_path else ""} for i in items]
    return {"test": datasets.Dataset.from_list(rows)}


def _media(doc: dict[str, Any]) -> Path:
    if not doc["media_path"]:
        raise FileNotFoundError(f"{doc['anycapeval_task']} item {doc['id']}: media file {doc['media']!r} not found; "
                                "pass lm_eval --metadata '{\"media_dir\": \"DIR\"}' (the folder holding it) or "
                                "'{\"data_dir\": \"DIR\"}' for the AnyCapEval release")
    return Path(doc["media_path"])


def doc_to_image(doc: dict[str, Any]) -> list[Any]:
    from anycapeval.media import load_image

    return [load_image(_media(doc))]


def doc_to_audio(doc: dict[str, Any]) -> list[dict[str, Any]]:
    from anycapeval.media import load_audio

    return [{"array": load_audio(_media(doc), AUDIO_RATE), "sampling_rate": AUDIO_RATE}]
