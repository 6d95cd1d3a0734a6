"""Task registry: YAML task files (package `anycapeval.tasks`, i.e. the repo's `tasks/`), validated.

A task file says what the items are (dataset, data file, modality), how they are scored (scorer,
aspect, dimension names and order) and who judges them (role, pinned snapshot, prompt template).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .types import AnyCapError


class JudgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["content", "style"]
    snapshot: str = Field(min_length=1)
    prompt: str = Field(min_length=1, description="template path, relative to the tasks folder")


class TaskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    version: str
    description: str = ""
    dataset: Literal["anycapeval", "demo"]
    modality: Literal["image", "video", "audio"]
    aspect: Literal["content", "style"]
    data_file: str
    skip_types: list[str] = []  # instruction types in data_file that belong to another task
    scorer: Literal["kpd", "style_rubric"]
    judge: JudgeSpec
    dimensions: dict[str, str] = Field(min_length=1, description="instruction type -> column name, in order")
    groups: list[str] = []
    expected_items: int | None = None


class Task(BaseModel):
    """A validated task plus where it came from."""

    config: TaskConfig
    path: str
    file_hash: str

    @property
    def name(self) -> str:
        return self.config.name


def tasks_dir() -> Path:
    return Path(str(resources.files("anycapeval.tasks")))


def prompt_path(task: Task) -> Path:
    return tasks_dir() / task.config.judge.prompt


def load_task_file(path: Path) -> Task:
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AnyCapError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise AnyCapError(f"{path}: a task file must be a YAML mapping")
    try:
        config = TaskConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in e['loc']) or '<root>'}': {e['msg']}" for e in exc.errors()
        )
        raise AnyCapError(f"{path}: invalid task: {problems}") from None
    if path.stem != config.name:
        raise AnyCapError(f"{path}: field 'name': '{config.name}' must match the file name '{path.stem}'")
    return Task(config=config, path=str(path), file_hash=hashlib.sha256(text.encode()).hexdigest()[:16])


@lru_cache(maxsize=4)
def _load_all(directory: str) -> dict[str, Task]:
    tasks = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        task = load_task_file(path)
        tasks[task.name] = task
    return tasks


def all_tasks(directory: Path | None = None) -> dict[str, Task]:
    return _load_all(str(directory or tasks_dir()))


def groups(directory: Path | None = None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for task in all_tasks(directory).values():
        for group in task.config.groups:
            out.setdefault(group, []).append(task.name)
    return out


def resolve_tasks(spec: str, directory: Path | None = None) -> list[Task]:
    """'demo' or 'anycapeval_image,demo_audio_style' -> tasks, in order, without duplicates."""
    tasks, grp = all_tasks(directory), groups(directory)
    names: list[str] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        if token in tasks:
            found = [token]
        elif token in grp:
            found = grp[token]
        else:
            known = ", ".join(sorted(tasks) + sorted(grp))
            raise AnyCapError(f"unknown task or group '{token}'. Known: {known}. See `anycapeval tasks`.")
        names.extend(n for n in found if n not in names)
    if not names:
        raise AnyCapError("no task given: pass --tasks NAME[,NAME...] (see `anycapeval tasks`)")
    return [tasks[n] for n in names]
