"""Task files: what one YAML file in `tasks/` (the package `anycapeval.tasks`) says, checked field by field.

A task file says what the items are (dataset, data file, modality), how they are scored (scorer,
aspect, dimension names and order) and who judges them (role, pinned snapshot, prompt template).

A leaf: it imports nothing of the package but `types`; that the scorer and roles a file names exist is
checked by `registry`, which knows the scorers.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .types import AnyCapError, Modality


class JudgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field(pattern=r"^[a-z_]+$",
                      description="content, style, or a role a benchmark scorer lists in judge_roles")
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
    # which reader reads the items: a key of anycapeval.data.READERS (one module per benchmark in readers/)
    dataset: str = Field(pattern=r"^[a-z0-9_]+$")
    modality: Modality
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


def read_task_file(path: Path) -> tuple[TaskConfig, str]:
    """The file's validated fields and its text; an error names the file and the field."""
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
    return config, text
