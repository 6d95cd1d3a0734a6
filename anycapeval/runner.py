"""The runner: generate -> judge -> score, per task, with the cache in between.

A task runs in chunks of CHUNK_ITEMS items; each chunk's rows stream to temporary files in the run
directory (rowsink.py) and its scores into compact per-item numbers, so memory does not grow with the
rows. Nothing in the run directory is complete until the task set is finished: the row files are
renamed into place at the end (atomically) and the other files are written whole; progress lives in
the SQLite cache, so a killed run re-run with the same arguments makes no call twice and ends with the
same files as an uninterrupted one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import __version__, batch, distributed
from .data import ItemChain, item_source
from .generation import generate, shard_block
from .judges import make_judge
from .judges.base import JudgeBase
from .lifecycle import shutdown_warning
from .media import media_hash
from .prompts import Template, load_template
from .provenance import git_revision, package_versions
from .readers.anycapeval import resolve_data_dir
from .registry import resolve_tasks
from .rowsink import OneBarPerStage, RowTally, RunRows, bulk_gc, by_round
from .scorers import SCORERS, get_scorer
from .scorers.base import ScorerBase
from .stats import N_RESAMPLES, SEED
from .store import Cache, KeyPrefix, default_cache_path, write_json_atomic
from .systems import make_system
from .systems.base import SystemBase
from .task_config import Task, prompt_path
from .types import JUDGE_ERROR, OK, AnyCapError, Item, JudgeRequest, Judgment, Prediction, Role

console = Console(stderr=True)
# A task is generated, judged and scored this many items at a time (run_task): 15,360 = 2^10 x 15, a
# multiple of every usual batch size (1-6, 8, 10, 12, 15, 16, 20, 24, 30, 32, 64, ...), so a batched
# system's batches are the same as in one pass over the task.
CHUNK_ITEMS = 15_360


@dataclass
class RunOptions:
    model: str
    tasks: str
    data_dir: str | None = None
    media_dir: str | None = None  # media for every modality
    media_dirs: dict[str, str] = field(default_factory=dict)  # per modality, overriding media_dir
    judge: str | None = None
    judge_base_url: str | None = None
    judge_key_file: str | None = None
    judge_prompts: dict[str, Path] = field(default_factory=dict)
    judge_concurrency: int = 16
    judge_media: str = "auto"
    judge_options: dict[str, Any] = field(default_factory=dict)
    judge_params: dict[str, Any] = field(default_factory=dict)  # --judge-param: client settings and extra_body
    protocol: str = "default"
    output: Path | None = None
    limit: int | None = None
    max_judge_error_rate: float = 0.0
    max_generation_error_rate: float = 0.0
    cache_path: Path | None = None
    allow_self_judge: bool = False
    command: list[str] = field(default_factory=list)
    model_args: dict[str, str] = field(default_factory=dict)  # --model-args (secrets are refused when parsed)
    base: str | None = None  # the base system an acm: system refines
    base_args: dict[str, str] = field(default_factory=dict)
    shard: tuple[int, int] | None = None  # (k, n), 1 <= k <= n: this process runs the k-th of n blocks
    generation_concurrency: int = 8
    judge_batch: bool = False  # --judge-batch: judge through the OpenAI Batch API (anycapeval.batch)
    judge_batch_retry: str = "online"  # failed batch lines: "online" or "batch" (follow-up batches)


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    exit_code: int
    messages: list[str]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "run"


def progress_bars(disable: bool = False) -> Progress:
    """The run's progress display: one bar per stage and task, with counts and elapsed time."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=disable)


def judgment_key(judge: JudgeBase, request: JudgeRequest) -> str:
    """Cache key of a judgment: the judge's identity + the role + the prompt + the media's hash."""
    return judgment_keys(judge)(request)


def judgment_keys(judge: JudgeBase) -> Callable[[JudgeRequest], str]:
    """judgment_key for many requests to one judge, its identity serialised once (store.KeyPrefix)."""
    prefix = KeyPrefix("judgment", judge.identity)
    return lambda request: prefix(request.role, request.prompt,
                                  media_hash(request.media_path) if request.media_path else None)


def judge_spec_for(task: Task, role: str, requested: str | None) -> str | None:
    """`--judge openai` (no model) means the task's pinned snapshot for that role."""
    if requested == "openai":
        return f"openai:{task.config.judge_for_role(role).snapshot}"
    return requested


class Runner:
    def __init__(self, options: RunOptions):
        self.options = options
        self.tasks = resolve_tasks(options.tasks)
        self.cache = Cache(options.cache_path or default_cache_path())
        self.judges: dict[str, JudgeBase] = {}
        self.messages: list[str] = []
        self.run_rows = RowTally()  # what the summary counts over every row of the run
        self.launch = distributed.launch_from_env()  # torchrun / accelerate launch: None for one process
        self.gathered: dict[str, list[Prediction]] = {}  # task -> every rank's predictions, on rank 0
        if self.launch is not None and options.shard:
            raise AnyCapError(f"--shard splits a run over processes you start by hand (joined with `anycapeval "
                              f"merge`); under torchrun / accelerate launch (WORLD_SIZE={self.launch.world_size}) "
                              "the ranks split every task themselves: drop --shard, or launch one process per shard")

    def judge_for(self, task: Task, role: str) -> JudgeBase:
        spec = judge_spec_for(task, role, self.options.judge) or "offline"
        if spec not in self.judges:
            options = self.options
            self.judges[spec] = make_judge(spec, base_url=options.judge_base_url, key_file=options.judge_key_file,
                                           concurrency=options.judge_concurrency, params=options.judge_params,
                                           **options.judge_options)
            judge = self.judges[spec]
            warning = shutdown_warning(judge.model) if judge.model else None
            for note in [*judge.notes, *([warning] if warning else [])]:
                self.say(note)
        judge = self.judges[spec]
        known = judge.roles
        if known is not None and role not in known:
            raise AnyCapError(f"task {task.name}: judge {spec} cannot act as the '{role}' judge (it knows "
                              f"{', '.join(known)}); pass --judge openai for the task's pinned snapshot, or "
                              "--judge openai:<model>")
        return judge

    def say(self, message: str) -> None:
        """A warning shown now and repeated in the end-of-run summary."""
        if message not in self.messages and not (self.launch and self.launch.rank):  # rank 0 speaks
            console.print(f"[yellow]warning:[/yellow] {message}")
            self.messages.append(message)

    def template_for(self, task: Task, role: Role) -> Template:
        overrides = self.options.judge_prompts
        path = overrides.get(role.name) or overrides.get("*") or prompt_path(task, role.name)
        return load_template(role.name, path, role.placeholders)

    # -- stages -----------------------------------------------------------------------------------

    async def generate(self, system: SystemBase, items: list[Item], progress: Progress) -> list[Prediction]:
        return await generate(system, items, self.cache, progress, self.options.generation_concurrency)

    async def generate_distributed(self, launch: distributed.Launch, system: SystemBase,
                                   items_by_task: dict[str, Sequence[Item]]) -> bool:
        """torchrun / accelerate launch: this rank captions its slice of every task (through the cache, as
        always) and the slices are gathered on rank 0, in item order, for run_task. Returns whether this
        rank goes on to judge, score and write: rank 0 does; the others close their system and stop."""
        mine: dict[str, list[Prediction]] = {}
        with progress_bars(disable=launch.rank != 0) as progress:
            for task in self.tasks:
                items = items_by_task[task.name]
                start, stop = distributed.rank_slice(len(items), system.batch_size or 1, launch, CHUNK_ITEMS)
                mine[task.name] = await self.generate(system, list(items[start:stop]), progress)
        parts = distributed.gather(launch, mine, distributed.backend_for(system.settings()))
        if parts is None:
            for closable in [system, *([system.base] if system.base else [])]:
                await closable.aclose()
            self.cache.close()
            return False
        self.gathered = {name: [p for part in parts for p in part[name]] for name in mine}
        return True

    def apply_media_policy(self, judge: JudgeBase, item: Item, request: JudgeRequest,
                           sees_media: bool) -> tuple[JudgeRequest, str]:
        """--judge-media: the request to send, and an error when the item cannot be judged as asked."""
        if not sees_media or not judge.supports_media or self.options.judge_media == "never":
            return (request if request.media_path is None else replace(request, media_path=None)), ""
        if request.media_path is None and self.options.judge_media == "always":
            return request, f"media file {item.media!r} not found (--judge-media always)"
        return request, ""

    async def judge_all(self, judge: JudgeBase, keyed: list[tuple[str, JudgeRequest]], progress: Progress,
                        label: str) -> dict[str, Judgment]:
        cached = self.cache.get_many([k for k, _ in keyed])
        results = {k: Judgment(**v) for k, v in cached.items()}
        todo = list({k: r for k, r in keyed if k not in results}.items())
        bar = progress.add_task(f"judge {label}", total=len(keyed), completed=len(keyed) - len(todo))

        def done(key: str, judgment: Judgment, store: bool = True) -> None:
            results[key] = judgment
            if store and judgment.status == OK:
                self.cache.put(key, "judgment", judgment.to_dict())
            progress.advance(bar)

        if self.options.judge_batch and todo and judge.batch_api:  # the OpenAI Batch API (anycapeval.batch)
            await batch.run_part(judge, todo, done, self.cache, retry=self.options.judge_batch_retry,
                                 progress=progress, label=f"judge {label}", say=self.say)
            return results
        if self.options.judge_batch and todo:
            self.say(f"--judge-batch: the judge {judge.spec} has no Batch API; it judged online")
        if judge.batch_size:
            size = judge.batch_size
            for start in range(0, len(todo), size):
                chunk = todo[start:start + size]
                answers = await judge.judge_batch([r for _, r in chunk])
                for (key, _), judgment in zip(chunk, answers):
                    done(key, judgment, store=False)
                # a batch arrives whole: one transaction for it loses nothing a put per judgment would keep
                self.cache.put_many("judgment", [(key, judgment.to_dict()) for (key, _), judgment
                                                 in zip(chunk, answers) if judgment.status == OK])
            return results

        queue: asyncio.Queue[tuple[str, JudgeRequest]] = asyncio.Queue()
        for entry in todo:
            queue.put_nowait(entry)

        async def worker() -> None:
            while not queue.empty():
                key, request = queue.get_nowait()
                done(key, await judge.judge(request))

        await asyncio.gather(*(worker() for _ in range(min(self.options.judge_concurrency, len(todo)) or 1)))
        return results

    async def judge_rounds(self, task: Task, scorer: ScorerBase, judges: dict[str, JudgeBase],
                           templates: dict[str, Template], items: list[Item], predictions: list[Prediction],
                           progress: Progress) -> tuple[dict[str, list[Judgment]], list[dict[str, Any]]]:
        """Ask the scorer for requests round by round until no item needs more; an item whose
        judgment failed gets no further requests. Returns the judgments per item id and their rows."""
        cfg = task.config
        sees_media = {}
        for judge_role in scorer.judge_roles:
            setting = cfg.judge_for_role(judge_role.name).media
            sees_media[judge_role.name] = judge_role.sees_media if setting is None else setting
        keys = {role: judgment_keys(judge) for role, judge in judges.items()}
        prompt_hashes = {role: template.hash for role, template in templates.items()}
        judgments: dict[str, list[Judgment]] = {item.id: [] for item in items}
        rows: list[dict[str, Any]] = []
        active = [(i, p) for i, p in zip(items, predictions) if p.status == OK and not scorer.skip_reason(i, p)]
        round_no = 0
        while active and scorer.roles:
            planned: list[tuple[Item, JudgeRequest, str, str]] = []  # item, request, cache key ('' = pre-failed), note
            pre_errors: dict[int, Judgment] = {}
            for item, pred in active:
                for request in scorer.requests(item, pred, templates, judgments[item.id]):
                    judge = judges[request.role]
                    request, error = self.apply_media_policy(judge, item, request, sees_media[request.role])
                    if error:
                        pre_errors[len(planned)] = Judgment(JUDGE_ERROR, judge.spec, error=error, attempts=0)
                        planned.append((item, request, "", ""))
                        continue
                    note = ""
                    if sees_media[request.role] and judge.supports_media and self.options.judge_media == "auto" \
                            and request.media_path is None:
                        note = f"media {item.media!r} not found: judged text-only"
                    planned.append((item, request, keys[request.role](request), note))
            if not planned:
                break
            label = cfg.name if round_no == 0 else f"{cfg.name} (round {round_no + 1})"
            judged: dict[str, Judgment] = {}
            for role, judge in judges.items():
                keyed = [(key, req) for _, req, key, _ in planned if key and req.role == role]
                if keyed:
                    judged.update(await self.judge_all(judge, keyed, progress, label if len(judges) == 1
                                                       else f"{label} {role}"))
            failed_items: set[str] = set()
            for n, (item, request, key, note) in enumerate(planned):
                judgment = pre_errors.get(n) or judged[key]
                judgments[item.id].append(judgment)
                if judgment.status != OK:
                    failed_items.add(item.id)
                row = {"task": cfg.name, "item_id": item.id, "item_source": item.source, "role": request.role,
                       "round": round_no, **judgment.to_dict(), "prompt_hash": prompt_hashes[request.role],
                       "cache_key": key or None}
                if note:
                    row["notes"] = [*row["notes"], note]
                rows.append(row)
            active = [(i, p) for i, p in active if i.id not in failed_items]
            round_no += 1
        return judgments, rows

    async def run_task(self, task: Task, system: SystemBase, items: Sequence[Item],
                       progress: Progress) -> dict[str, Any]:
        """Generate, judge and score a task in chunks of CHUNK_ITEMS items: each chunk's rows go to the run's
        row files (self.rows) and its scores into the scorer's tally, so what the task holds grows by a few
        numbers per item (and by the items, when they are a list rather than an ItemFile)."""
        cfg = task.config
        scorer = get_scorer(cfg.scorer, self.options.protocol, cfg.modality, cfg.options)
        judges = {role: self.judge_for(task, role) for role in scorer.roles}
        templates = {role.name: self.template_for(task, role) for role in scorer.judge_roles}
        judge_label = ", ".join(dict.fromkeys(j.spec for j in judges.values())) or "none"
        prompt_hash = _combined_hash({role: t.hash for role, t in templates.items()})
        provenance = {"task_version": cfg.version, "system": system.spec, "judge": judge_label,
                      "prompt_hash": prompt_hash, "protocol": self.options.protocol}
        gathered = self.gathered.pop(task.name, None)  # distributed generation: every rank's predictions
        tally = scorer.tally()
        task_rows = RowTally()
        rounds: dict[int, RowTally] = {}  # judgment rows are counted round by round: their file order
        # Through the Batch API a chunk waits until its batches end (minutes to 24 h), so there the whole
        # task is one chunk: all of its batches are in the queue at once, and memory grows with the task.
        size = (len(items) or 1) if self.options.judge_batch or system.batch_api else CHUNK_ITEMS
        for start in range(0, len(items), size):
            chunk = list(items[start:start + size])  # an ItemFile slice reads its items here
            predictions = gathered[start:start + size] if gathered is not None else \
                await self.generate(system, chunk, progress)
            judgments, judgment_rows = await self.judge_rounds(task, scorer, judges, templates, chunk, predictions,
                                                               progress)
            prediction_rows = [p.to_dict() for p in predictions]
            score_rows = []
            for item, pred in zip(chunk, predictions):
                score = scorer.score(item, pred, judgments[item.id])
                tally.add(score)
                score_rows.append(score.to_dict())
            self.rows.predictions(prediction_rows, tail={"task_version": cfg.version})  # each row + its provenance
            self.rows.scores(score_rows, tail=provenance)
            task_rows.add_predictions(prediction_rows)
            for round_no, rows in by_round(judgment_rows):
                self.rows.judgments(round_no, rows)
                rounds.setdefault(round_no, RowTally()).add_judgments(rows)
            del judgments, judgment_rows, prediction_rows, score_rows, predictions
        self.rows.end_task()
        for round_no in sorted(rounds):
            task_rows.merge(rounds[round_no])
        self.run_rows.merge(task_rows)

        media_seen = dict(task_rows.media_seen)
        text_only = task_rows.text_only
        if text_only:
            self.messages.append(f"{cfg.name}: {text_only} judgments were made text-only because the media file "
                                 "was not found (pass --media-dir, or --judge-media always to make it an error)")
        result = tally.result(list(cfg.dimensions.values()))
        served = dict(task_rows.served_any)
        task_cost = task_rows.cost.result()
        paper_judges = {spec.paper_snapshot for spec in cfg.judges if spec.paper_snapshot}
        differs = sorted(p for p in paper_judges if not any(j.spec.endswith(f":{p}") for j in judges.values()))
        single = len(templates) == 1
        return {"task_version": cfg.version, "task_file_hash": task.file_hash, "modality": cfg.modality,
                "aspect": cfg.aspect, "scorer": cfg.scorer, "protocol": self.options.protocol, "judge": judge_label,
                "judges_by_role": {role: j.spec for role, j in judges.items()},
                "judge_is_approximation": any(j.approximation for j in judges.values()),
                "prompt": next(iter(templates.values())).path if single else
                {role: t.path for role, t in templates.items()},
                "prompt_hash": prompt_hash, "judge_media_seen": media_seen, "served_judge": served,
                "cost": task_cost,
                **({"paper_judge": ", ".join(differs)} if differs else {}), **result}

    # -- the whole run --------------------------------------------------------------------------------

    def select_items(self) -> tuple[dict[str, Sequence[Item]], dict[str, set[str]], Iterable[Item]]:
        """(this process's items per task after --limit and --shard, every id per task, every item).
        AnyCapEval-layout tasks' items stay in their files (data.item_source): run_task reads them a chunk
        at a time, and every_item reads them again for a system that matches captions to items."""
        options = self.options
        items_by_task = {t.name: item_source(t, options.data_dir,
                                             options.media_dirs.get(t.config.modality) or options.media_dir,
                                             cache=self.cache)
                         for t in self.tasks}
        all_ids = {name: getattr(items, "ids", None) or {i.id for i in items} for name, items in items_by_task.items()}
        every_item = ItemChain(items_by_task.values())
        if options.limit is not None:
            items_by_task = {n: items[:options.limit] for n, items in items_by_task.items()}
        self.shard_blocks = {n: shard_block(len(items), options.shard) for n, items in items_by_task.items()}
        items_by_task = {n: items[slice(*self.shard_blocks[n][:2])] for n, items in items_by_task.items()}
        return items_by_task, all_ids, every_item

    def make_system(self, every_item: Iterable[Item], all_ids: dict[str, set[str]]) -> SystemBase:
        options = self.options
        for task in self.tasks:
            for judge_spec in task.config.judges:
                spec = judge_spec_for(task, judge_spec.role, options.judge)
                if spec and spec.startswith("openai:") and spec == options.model and not options.allow_self_judge:
                    raise AnyCapError(f"the judge {spec} is the system under test; pass --allow-self-judge to do it "
                                      "anyway")
        return make_system(options.model, every_item, all_ids, model_args=options.model_args, base=options.base,
                           base_args=options.base_args, concurrency=options.generation_concurrency)

    async def run(self) -> RunResult:
        options = self.options
        items_by_task, all_ids, every_item = self.select_items()
        system = self.make_system(every_item, all_ids)
        for note in system.notes:
            self.say(note)
        for task in self.tasks:  # fail fast on a bad judge or prompt, before any generation
            for judge_spec in task.config.judges:
                self.judge_for(task, judge_spec.role)
                self.template_for(task, SCORERS[task.config.scorer].role(judge_spec.role))

        run_dir = options.output or Path("runs") / f"{dt.datetime.now():%Y%m%d-%H%M%S}-{_slug(system.spec)}"
        manifest = self.manifest(system, "running")
        if self.launch is not None:  # every rank captions its slice; rank 0 gets them all and goes on alone
            if not await self.generate_distributed(self.launch, system, items_by_task):
                return RunResult(run_dir, {}, 0, [])  # another rank: rank 0 judges, scores and writes
        write_json_atomic(run_dir / "manifest.json", manifest)
        summary: dict[str, Any] = {"system": system.spec, "protocol": options.protocol, **self.system_fields(system),
                                   "tasks": {}}
        if options.shard:  # a part of a run: `anycapeval merge` drops this when it joins the shards
            summary["shard"] = f"{options.shard[0]}/{options.shard[1]}"
        self.rows = RunRows(run_dir)  # the row files, streamed to temporary files until the run is done
        try:
            with progress_bars() as bars, bulk_gc():
                stages = OneBarPerStage(bars)
                for task in self.tasks:
                    summary["tasks"][task.name] = await self.run_task(task, system, items_by_task[task.name],
                                                                      cast(Progress, stages))
                stages.flush()
        except BaseException:
            self.rows.discard()
            raise
        finally:
            closables: list[JudgeBase | SystemBase] = [*self.judges.values(), system]
            for closable in closables + ([system.base] if system.base else []):
                await closable.aclose()

        judged, judge_failed = self.run_rows.judgments, self.run_rows.judge_failed
        generated, generation_failed = self.run_rows.predictions, self.run_rows.generation_failed
        rate = judge_failed / judged if judged else 0.0
        summary["judges"] = sorted({t["judge"] for t in summary["tasks"].values()})
        summary["judge_errors"] = {"n": judge_failed, "of": judged, "rate": rate,
                                   "max_allowed_rate": options.max_judge_error_rate}
        gen_rate = generation_failed / generated if generated else 0.0
        summary["generation_errors"] = {"n": generation_failed, "of": generated, "rate": gen_rate,
                                        "max_allowed_rate": options.max_generation_error_rate}
        summary["served_models"] = served = self.run_rows.served_models()
        summary["cost"] = self.run_rows.cost.result()
        for role, by_spec in served.items():
            for spec, snapshots in by_spec.items():
                if len(snapshots) > 1:
                    self.say(f"{role} {spec} was answered by {len(snapshots)} different snapshots ("
                             + ", ".join(f"{m} x {n}" for m, n in snapshots.items())
                             + "): pin a dated snapshot so every item is judged by the same model")
        exit_code = 0
        if generation_failed and gen_rate > options.max_generation_error_rate:
            exit_code = 4
            self.messages.append(f"{generation_failed} of {generated} generations failed ({gen_rate:.1%} > "
                                 f"--max-generation-error-rate {options.max_generation_error_rate:.1%}); they are "
                                 "excluded from every score (see predictions.jsonl for each error).")
        if judge_failed and rate > options.max_judge_error_rate:
            exit_code = 3
            self.messages.append(f"{judge_failed} of {judged} judgments failed ({rate:.1%} > "
                                 f"--max-judge-error-rate {options.max_judge_error_rate:.1%}); they are excluded from "
                                 "every score. Re-run the same command to retry only those.")
        from .report import summary_markdown

        self.rows.commit()  # predictions.jsonl, judgments.jsonl, scores.jsonl renamed into place
        write_json_atomic(run_dir / "summary.json", summary)
        (run_dir / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
        write_json_atomic(run_dir / "manifest.json", {**manifest, **self.manifest(system, "complete"),
                                                      "served_models": served})
        self.cache.close()
        return RunResult(run_dir, summary, exit_code, self.messages)

    def manifest(self, system: SystemBase, status: str) -> dict[str, Any]:
        options = self.options
        return {
            "status": status,
            "finished_at" if status == "complete" else "started_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "anycapeval_version": __version__, "git_revision": git_revision(), "versions": package_versions(),
            "system": system.spec, **self.system_fields(system), "protocol": options.protocol,
            "system_settings": system.settings(), "base_settings": system.base.settings() if system.base else None,
            "shard": None if options.shard is None else {
                "index": options.shard[0], "count": options.shard[1],
                "blocks": {name: {"start": b[0], "stop": b[1], "total": b[2]}
                           for name, b in self.shard_blocks.items()}},
            "tasks": {t.name: {"version": t.config.version, "file": t.path, "file_hash": t.file_hash,
                               "dataset": t.config.dataset, "data_revision": data_revision(t, options.data_dir)}
                      for t in self.tasks},
            "judges": {j.spec: j.settings() for j in self.judges.values()},
            "judge_media": options.judge_media,
            **({"distributed": {"world_size": self.launch.world_size,
                                "backend": distributed.backend_for(system.settings())}} if self.launch else {}),
            "seeds": {"bootstrap": SEED, "bootstrap_resamples": N_RESAMPLES},
            "arguments": {"command": options.command, "model": options.model, "tasks": options.tasks,
                          "data_dir": options.data_dir, "media_dir": options.media_dir,
                          "media_dirs": options.media_dirs,
                          "judge": options.judge, "judge_base_url": options.judge_base_url,
                          "judge_key_file": options.judge_key_file, "limit": options.limit,
                          "shard": None if options.shard is None else f"{options.shard[0]}/{options.shard[1]}",
                          "generation_concurrency": options.generation_concurrency,
                          "judge_prompts": {k: str(v) for k, v in options.judge_prompts.items()},
                          "judge_params": options.judge_params, "max_judge_error_rate": options.max_judge_error_rate,
                          "max_generation_error_rate": options.max_generation_error_rate,
                          "judge_batch": options.judge_batch, "judge_batch_retry": options.judge_batch_retry},
        }


    def system_fields(self, system: SystemBase) -> dict[str, Any]:
        """What a leaderboard needs to know about the system besides its spec: the base an acm:
        system refines and the --model-args (secrets are refused when parsed, so none are here)."""
        out: dict[str, Any] = {}
        base = system.base_spec
        if base:
            out["base"] = base
        if self.options.model_args:
            out["model_args"] = dict(self.options.model_args)
        if base and self.options.base_args:
            out["base_args"] = dict(self.options.base_args)
        return out


def data_revision(task: Task, data_dir: str | None) -> str | None:
    """The dataset commit behind this task's items, where it is known (`anycapeval data fetch` records it;
    MIA-Bench's is the task file's hf_revision)."""
    from .release import fetched_revision

    if task.config.dataset == "anycapeval":
        try:
            return fetched_revision(resolve_data_dir(data_dir))
        except AnyCapError:
            return None
    revision = task.config.options.get("hf_revision")
    return None if revision is None else str(revision)


def _combined_hash(hashes: dict[str, str]) -> str:
    """One prompt hash for a task: the template's own for a single role, else a hash of all of them."""
    if len(hashes) <= 1:
        return next(iter(hashes.values()), "")
    joined = ";".join(f"{role}={h}" for role, h in sorted(hashes.items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:12]


def run(options: RunOptions) -> RunResult:
    return asyncio.run(Runner(options).run())
