"""Systems under test: `async generate(item) -> Prediction`.

`reference`            the item's own reference caption (the oracle row of a leaderboard)
`predictions:<file>`   captions someone already has: this project's JSONL
                       ({"id", "caption", optional "task"}) or the official AnyCap generation files
                       (records with `model_response_content` / `model_response_style` /
                       `model_response`; the video scripts write a one-element list)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..data import read_jsonl
from ..types import GENERATION_ERROR, OK, AnyCapError, InputError, Item, Prediction

CAPTION_FIELDS = ("caption", "model_response_content", "model_response_style", "model_response")


class System(Protocol):
    spec: str
    cacheable: bool  # worth caching generations (a model call), or instant (a file, the reference)

    async def generate(self, item: Item) -> Prediction: ...


class ReferenceSystem:
    spec = "reference"
    cacheable = False

    async def generate(self, item: Item) -> Prediction:
        return Prediction(item.task, item.id, self.spec, item.reference)


def _caption(record: dict[str, Any], where: str) -> tuple[str, str]:
    present = [f for f in CAPTION_FIELDS if f in record]
    if not present:
        raise InputError(where, "caption", f"no caption field (expected one of {', '.join(CAPTION_FIELDS)})")
    name = present[0]
    value = record[name]
    if isinstance(value, list):  # the official video generation scripts write [caption]
        if len(value) != 1:
            raise InputError(where, name, f"a list caption must hold exactly one string, got {len(value)} items")
        value = value[0]
    if not isinstance(value, str):
        raise InputError(where, name, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise InputError(where, name, "empty caption")
    return name, value


class PredictionsSystem:
    """Captions from a file, matched to items by (task, id). Lines for tasks not being run are
    ignored; an id that is in none of the selected tasks is an error, as is a duplicate."""

    cacheable = False

    def __init__(self, path: str | Path, items: list[Item], all_ids: dict[str, set[str]]):
        self.path = Path(path)
        self.spec = f"predictions:{self.path.name}"
        if not self.path.is_file():
            raise AnyCapError(f"predictions file {self.path} not found")
        self.captions: dict[tuple[str, str], str] = {}
        tasks = sorted(all_ids)
        seen: dict[tuple[str, str], str] = {}
        for lineno, record in read_jsonl(self.path):
            where = f"{self.path}:{lineno}"
            if "id" not in record:
                raise InputError(where, "id", "missing")
            item_id = str(record["id"])
            task = record.get("task")
            if task is not None and task not in all_ids:
                continue  # a line for a task not selected in this run
            owners = [task] if task is not None else [t for t in tasks if item_id in all_ids[t]]
            if not owners or item_id not in all_ids[owners[0]]:
                raise InputError(where, "id", f"unknown id {item_id!r} (not an item of {task or ', '.join(tasks)})")
            if len(owners) > 1:
                raise InputError(where, "id", f"id {item_id!r} is in several tasks ({', '.join(owners)}): "
                                 "add a 'task' field to each line")
            key = (owners[0], item_id)
            if key in seen:
                raise InputError(where, "id", f"duplicate id {item_id!r} for task {owners[0]} (first at {seen[key]})")
            seen[key] = where
            self.captions[key] = _caption(record, where)[1]

    async def generate(self, item: Item) -> Prediction:
        caption = self.captions.get((item.task, item.id))
        if caption is None:
            return Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR,
                              f"no caption for this item in {self.path}")
        return Prediction(item.task, item.id, self.spec, caption, OK)


def make_system(spec: str, items: list[Item], all_ids: dict[str, set[str]]) -> System:
    kind, _, arg = spec.partition(":")
    if kind == "reference":
        return ReferenceSystem()
    if kind == "predictions" and arg:
        return PredictionsSystem(arg, items, all_ids)
    raise AnyCapError(f"unknown system '{spec}': use reference or predictions:<file>")
