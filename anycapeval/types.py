"""The small typed nouns that carry everything through the pipeline.

Item -> (System) -> Prediction -> (Scorer) -> JudgeRequest -> (Judge) -> Judgment -> (Scorer) -> Score.
All of them are plain frozen dataclasses so they hash, compare and serialise without surprises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

Modality = Literal["image", "video", "audio"]
# What became of one prediction, judgment or score: only `ok` counts; `skipped` is a score the
# protocol leaves out on purpose (anycap_v1's "None" rule, an empty VidCapBench QA list).
Status = Literal["ok", "generation_error", "judge_error", "skipped"]
OK: Final = "ok"
GENERATION_ERROR: Final = "generation_error"
JUDGE_ERROR: Final = "judge_error"
SKIPPED: Final = "skipped"


class AnyCapError(Exception):
    """An error a user can fix: the message names what is wrong and where."""


class InputError(AnyCapError):
    """Bad input data. `where` is 'file:line' (or just the file), `field` the offending field."""

    def __init__(self, where: str, field: str, message: str):
        self.where, self.field = where, field
        super().__init__(f"{where}: field '{field}': {message}")


@dataclass(frozen=True, slots=True)  # slots: a million items in a run, ~60 bytes each saved
class Item:
    """One benchmark item: media + instruction + what the scorer needs."""

    task: str
    id: str
    modality: str  # a Modality, or "" for a caption judged outside a task (studies/)
    instruction: str
    reference: str
    instruction_type: str  # restriction[0], e.g. "multi_class_position"
    dimension: str  # paper abbreviation, e.g. "IPos"
    length_constraint: str  # restriction[1], the free-text constraint sentence
    key_points: tuple[str, ...] = ()
    media: str | None = None  # file name as written in the data
    media_path: Path | None = None  # resolved path, None when the file is absent
    source: str = ""  # "file:line" the item came from
    references: tuple[str, ...] = ()  # several reference captions (reference metrics); `reference` is the first
    # what a benchmark's scorer needs beyond the above (MIA components, VidCapBench questions, ...)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Prediction:
    task: str
    item_id: str
    system: str
    caption: str
    status: Status = OK  # OK | GENERATION_ERROR
    error: str = ""
    usage: dict[str, int] = field(default_factory=dict, compare=False, hash=False)  # tokens a model call used
    # what actually answered, for API systems: the served snapshot, its fingerprint, why it stopped
    served_model: str = field(default="", compare=False)
    system_fingerprint: str = field(default="", compare=False)
    finish_reason: str = field(default="", compare=False)
    batch_id: str = field(default="", compare=False)  # answered through the Batch API (priced at its rate)

    def to_dict(self) -> dict[str, Any]:
        out = {**self.__dict__, "usage": dict(self.usage)}  # flat: no deep copy needed (asdict is slow at 100k)
        if not self.batch_id:
            del out["batch_id"]
        return out


@dataclass(frozen=True)
class Role:
    """A judge role: what a judge is asked to do and how its answer is read. A scorer class lists its
    roles (`ScorerBase.judge_roles`) and puts the role on every request it builds (`JudgeRequest.rules`),
    so a judge reads any role's answer without looking the role up."""

    name: str
    parse: Callable[[str, JudgeRequest], Any]  # raw answer -> value; raises judges.parse.JudgeAnswerError
    fake_answer: Callable[[JudgeRequest, bool], str]  # the answer of fake:perfect (True) / fake:zero (False)
    placeholders: tuple[str, ...] = ()  # what a prompt template for this role must contain, as {name}
    sees_media: bool = False  # default for whether the judge is shown the media (a task may override)
    # the JSON schema that pins a valid answer exactly, for servers with structured output (None: free text)
    schema: Callable[[JudgeRequest], dict[str, Any]] | None = None


@dataclass(frozen=True)
class JudgeRequest:
    """What a judge is asked. `prompt` is the rendered template; the structured fields let
    judges that do not read prompts (offline, fake) work from the same request."""

    role: str  # "content" | "style" | a benchmark scorer's own role: the name in the task file and cache key
    prompt: str
    caption: str
    key_points: tuple[str, ...] = ()
    reference: str = ""
    instruction_type: str = ""
    media_path: Path | None = None
    modality: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # role-specific data for parsing
    rules: Role | None = field(default=None, compare=False, hash=False)  # how the answer is read; set by the scorer


@dataclass
class Judgment:
    status: Status  # OK | JUDGE_ERROR
    judge: str  # judge spec incl. snapshot
    raw: str = ""  # the judge's raw answer text (last attempt)
    value: Any = None  # content: list[int] (one 0/1 per key point); style: int 0..4; other roles: their parser's
    usage: dict[str, int] = field(default_factory=dict)
    error: str = ""
    attempts: int = 1
    media_sent: str = "none"  # what the judge saw besides text: none | image | video_frames:N | audio
    notes: list[str] = field(default_factory=list)
    served_model: str = ""  # LLM judges: the snapshot that answered (an alias resolves to a dated one)
    system_fingerprint: str = ""
    finish_reason: str = ""
    batch_id: str = ""  # answered through the Batch API (priced at its rate); left out of rows when empty

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.update(usage=dict(self.usage), notes=list(self.notes),
                   value=list(self.value) if isinstance(self.value, list) else self.value)
        if not self.batch_id:
            del out["batch_id"]
        return out


@dataclass
class Score:
    """Per-item score. `metrics` holds the numbers the scorer aggregates; `status` says whether
    it counts (OK) or is excluded (JUDGE_ERROR / GENERATION_ERROR)."""

    task: str
    item_id: str
    dimension: str
    status: Status
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "metrics": dict(self.metrics)}
