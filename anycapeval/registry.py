"""The task registry: every task file in `tasks/`, checked against the scorers, by name and by group.

A task file says what the items are (dataset, data file, modality), how they are scored (scorer,
aspect, dimension names and order) and who judges them (role, pinned snapshot, prompt template);
its fields are `task_config.TaskConfig`.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from .scorers import SCORERS, all_roles
from .task_config import Task, read_task_file, tasks_dir
from .types import AnyCapError


def load_task_file(path: Path) -> Task:
    config, text = read_task_file(path)
    if config.scorer not in SCORERS:
        raise AnyCapError(f"{path}: field 'scorer': unknown scorer '{config.scorer}' (known: {', '.join(SCORERS)})")
    roles = [j.role for j in config.judges]
    known_roles = all_roles()
    unknown = [r for r in roles if r not in known_roles]
    if unknown:
        raise AnyCapError(f"{path}: field 'judge.role': unknown role(s) {unknown} "
                          f"(known: {', '.join(sorted(known_roles))})")
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
