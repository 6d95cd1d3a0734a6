"""Task registry: YAML task files (package `anycapeval.tasks`, i.e. the repo's `tasks/`), validated.

A task file says what the items are (dataset, data file, modality), how they are scored (scorer,
aspect, dimension names and order) and who judges them (role, pinned snapshot, prompt template).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .types import AnyCapError


class JudgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field(pattern=r"^[a-z_]+$", description="content, style, or a role a benchmark scorer registers")
    snapshot: str = Field(min_length=1)
    prompt: str = Field(min_length=1, description="template path, relative to the tasks folder")
    media: bool | None = Field(None, description="show the judge the media (default: the role's default)")
    paper_snapshot: str | None = Field(None, description="the judge the paper used, when it can no longer be "
                                       "pinned (shut down); leaderboards mark runs judged otherwise")


class TaskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    version: str
    description: str = ""
    # anycapeval and demo use the built-in AnyCapEval reader; any other dataset is read by its scorer
    dataset: str = Field(pattern=r"^[a-z0-9_]+$")
    modality: Literal["image", "video", "audio"]
    aspect: str = ""  # content | style for AnyCapEval; free text for other benchmarks
    data_file: str = ""
    skip_types: list[str] = []  # instruction types in data_file that belong to another task
    scorer: str = Field(pattern=r"^[a-z0-9_]+$", description="a name in anycapeval.scorers.SCORERS")
    judge: JudgeSpec | list[JudgeSpec] | None = None  # one spec per role; None = no judge (reference metrics)
    dimensions: dict[str, str] = Field({}, description="instruction type -> column name, in order")
    groups: list[str] = []
    expected_items: int | None = None
    options: dict[str, Any] = {}  # scorer-specific settings (documented by each scorer)

    @property
    def judges(self) -> list[JudgeSpec]:
        if self.judge is None:
            return []
        return self.judge if isinstance(self.judge, list) else [self.judge]

    def judge_for_role(self, role: str) -> JudgeSpec:
        for spec in self.judges:
            if spec.role == role:
                return spec
        raise AnyCapError(f"task {self.name} has no judge for role '{role}'")


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


def prompt_path(task: Task, role: str) -> Path:
    return tasks_dir() / task.config.judge_for_role(role).prompt


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
    from .judges.roles import ROLES
    from .scorers import SCORERS

    if config.scorer not in SCORERS:
        raise AnyCapError(f"{path}: field 'scorer': unknown scorer '{config.scorer}' (known: {', '.join(SCORERS)})")
    roles = [j.role for j in config.judges]
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise AnyCapError(f"{path}: field 'judge.role': unknown role(s) {unknown} (known: {', '.join(sorted(ROLES))})")
    if len(roles) != len(set(roles)):
        raise AnyCapError(f"{path}: field 'judge': each role may appear once, got {roles}")
    expected = SCORERS[config.scorer].roles
    if sorted(roles) != sorted(expected):
        raise AnyCapError(f"{path}: field 'judge': scorer '{config.scorer}' needs judges for roles {list(expected)}, "
                          f"got {roles}")
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
