"""`--dry-run` and `--max-cost`: the requests a run would make, their tokens and price, calling nothing.

The plan is built from the runner's own pieces (items after --limit/--shard, the system, the judges,
the prompt templates, the cache keys), so a finished run plans 0 requests. Nothing is generated or
judged and no model is loaded: the offline judge is not built (it costs nothing and its cache is not
looked up). A caption not yet generated cannot be put in its judge prompt, so those prompts are
estimated with the item's reference caption in its place. Only the first judging round is planned;
a later round (asked only after an answer) is not. Every number is an estimate.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from .cost import IMAGE_METHOD, TEXT_METHOD, image_tokens, money, price_for, price_table, shrunk, text_tokens, usd
from .generation import SERVED, generation_key
from .judges.base import JudgeBase
from .media import DEFAULT_VIDEO_FRAMES, MediaError
from .runner import Runner, RunOptions, judge_spec_for, judgment_key
from .scorers import get_scorer
from .systems.base import SystemBase
from .task_config import Task
from .types import GENERATION_ERROR, OK, Item, Prediction


@dataclass
class Line:
    """One (task, role, model) row of the plan."""

    task: str
    role: str  # "generate" or a judge role
    spec: str
    requests: int = 0
    cached: int = 0  # cache hits, not requested
    input_tokens: int = 0
    output_budget: int = 0  # max_tokens / max_completion_tokens per request x requests
    audio_unknown: int = 0  # requests carrying audio, whose tokens are not counted
    estimated_prompts: int = 0  # judge prompts rendered with the reference caption
    notes: list[str] = field(default_factory=list)

    def prices(self) -> dict[str, float | None]:
        price = price_for(self.spec)
        if price is None:
            return {"input_usd": None, "output_max_usd": None, "batch_usd": None, "usd": None}
        inp, out = usd(self.input_tokens, price["input"]), usd(self.output_budget, price["output"])
        batch_in, batch_out = usd(self.input_tokens, price.get("batch_input")), usd(self.output_budget,
                                                                                     price.get("batch_output"))
        batch = None if batch_in is None or batch_out is None else batch_in + batch_out
        return {"input_usd": inp, "output_max_usd": out, "batch_usd": batch, "usd": (inp or 0.0) + (out or 0.0)}

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, **self.prices()}


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # an unreadable file fails its item in the real run; here it counts no image tokens
        return None


def _video_size(path: Path) -> tuple[int, int] | None:
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return stream.codec_context.width, stream.codec_context.height
    except Exception:
        return None


def media_tokens(modality: str, path: Path | None, max_side: int | None, frames: int) -> tuple[int, bool]:
    """(estimated tokens for the media part, whether it is audio of unknown cost)."""
    if path is None:
        return 0, False
    if modality == "audio":
        return 0, True
    size = _image_size(path) if modality == "image" else _video_size(path)
    if size is None:
        return 0, False
    one = image_tokens(*shrunk(size[0], size[1], max_side))
    return (one if modality == "image" else one * frames), False


def _api(part: SystemBase | JudgeBase) -> Any:
    """The chat client of an API system or judge (None for local and offline ones)."""
    return getattr(part, "chat", None)


class Planner:
    def __init__(self, options: RunOptions):
        self.runner = Runner(options)
        self.options = options
        self.lines: list[Line] = []

    def judge(self, task: Task, role: str) -> JudgeBase | None:
        spec = judge_spec_for(task, role, self.options.judge) or "offline"
        if spec.startswith("offline"):
            return None  # local and free: not loaded for a plan
        return self.runner.judge_for(task, role)

    async def plan(self) -> list[Line]:
        items_by_task, all_ids, every_item = self.runner.select_items()
        system = self.runner.make_system(every_item, all_ids)
        try:
            for task in self.runner.tasks:
                await self.plan_task(task, system, list(items_by_task[task.name]))
        finally:
            parts: list[JudgeBase | SystemBase] = [*self.runner.judges.values(), system]
            for part in parts + ([system.base] if system.base else []):
                await part.aclose()
            self.runner.cache.close()
        return self.lines

    async def predictions(self, task: Task, system: SystemBase, items: list[Item]) -> tuple[list[Prediction], set[int]]:
        """Predictions for planning the judge, and the positions whose caption is not known yet."""
        cfg = task.config
        line = Line(cfg.name, "generate", system.spec)
        if not system.cacheable:  # a file or the reference: reading it calls nothing
            return [await system.generate(item) for item in items], set()
        keys: dict[int, str] = {}
        out: dict[int, Prediction] = {}
        for n, item in enumerate(items):
            try:
                keys[n] = generation_key(system, item)
            except MediaError as exc:
                out[n] = Prediction(item.task, item.id, system.spec, "", GENERATION_ERROR, str(exc))
        hits = self.runner.cache.get_many(list(dict.fromkeys(keys.values())))
        pending: set[int] = set()
        chat = _api(system)
        opts = getattr(system, "options", {}) if chat else {}
        for n, key in keys.items():
            item = items[n]
            if key in hits:
                line.cached += 1
                hit = hits[key]
                out[n] = Prediction(item.task, item.id, system.spec, hit["caption"], OK,
                                    **{k: hit.get(k, "") for k in SERVED})
                continue
            pending.add(n)
            out[n] = Prediction(item.task, item.id, system.spec, item.reference, OK)
            line.requests += 1
            line.input_tokens += text_tokens(item.instruction)
            if chat is not None:
                line.output_budget += chat.max_tokens
                if system.needs_media:
                    extra, audio = media_tokens(item.modality, item.media_path, opts.get("max_side"),
                                                opts.get("frames") or DEFAULT_VIDEO_FRAMES)
                    line.input_tokens += extra + (30 if item.modality == "video" else 0)  # the frames' caption
                    line.audio_unknown += audio
        if chat is None:
            line.notes.append("local model: text tokens of the instruction only")
        self.lines.append(line)
        return [out[n] for n in range(len(items))], pending

    async def plan_task(self, task: Task, system: SystemBase, items: list[Item]) -> None:
        cfg = task.config
        scorer = get_scorer(cfg.scorer, self.options.protocol, cfg.modality, cfg.options)
        judges = {role: self.judge(task, role) for role in scorer.roles}
        templates = {role.name: self.runner.template_for(task, role) for role in scorer.judge_roles}
        predictions, pending = await self.predictions(task, system, items)
        sees_media = {}
        for judge_role in scorer.judge_roles:
            setting = cfg.judge_for_role(judge_role.name).media
            sees_media[judge_role.name] = judge_role.sees_media if setting is None else setting
        lines = {role: Line(cfg.name, role, judge.spec if judge else judge_spec_for(task, role, self.options.judge)
                            or "offline") for role, judge in judges.items()}
        for n, (item, pred) in enumerate(zip(items, predictions)):
            if pred.status != OK or scorer.skip_reason(item, pred):
                continue
            for request in scorer.requests(item, pred, templates, []):
                line, judge = lines[request.role], judges[request.role]
                if judge is None:
                    line.requests += 1
                    line.input_tokens += text_tokens(request.prompt)
                    continue
                request, error = self.runner.apply_media_policy(judge, item, request, sees_media[request.role])
                if error:
                    continue
                if n not in pending:
                    key = judgment_key(judge, request)
                    if self.runner.cache.get_many([key]):
                        line.cached += 1
                        continue
                line.requests += 1
                line.estimated_prompts += n in pending
                line.input_tokens += text_tokens(request.prompt)
                chat = _api(judge)
                if chat is not None:
                    line.output_budget += chat.max_tokens
                    if request.media_path is not None:
                        frames = getattr(judge, "video_frames", DEFAULT_VIDEO_FRAMES)
                        extra, audio = media_tokens(request.modality, request.media_path,
                                                    1024 if request.modality == "image" else 768, frames)
                        line.input_tokens += extra
                        line.audio_unknown += audio
        for role, line in lines.items():
            if judges[role] is None:
                line.notes.append("offline judge: free, not loaded, cache not looked up")
            if line.estimated_prompts:
                line.notes.append(f"{line.estimated_prompts} prompts estimated with the reference caption "
                                  "(the caption is not generated yet)")
            self.lines.append(line)


def plan(options: RunOptions) -> list[Line]:
    return asyncio.run(Planner(options).plan())


def total_usd(lines: list[Line]) -> float:
    """Input at the standard rate plus the full output budget: an upper bound for the priced lines."""
    return sum(line.prices()["usd"] or 0.0 for line in lines)


def print_plan(lines: list[Line], console: Console) -> None:
    """Two lines per (task, role, model), readable at any terminal width."""
    console.print("DRY RUN: an ESTIMATE of the requests this command would make; nothing was called.", highlight=False)
    for line in lines:
        prices = line.prices()
        audio = f" + {line.audio_unknown} audio inputs of unknown size" if line.audio_unknown else ""
        if prices["usd"] is None:
            price = "no price"
        else:
            batch = "no batch price" if prices["batch_usd"] is None else f"batch {money(prices['batch_usd'])}"
            price = f"est. {money(prices['usd'])} ({batch})"
        console.print(f"{line.task}  {line.role}  {line.spec}\n    {line.requests} requests ({line.cached} cached), "
                      f"~{line.input_tokens:,} input tokens{audio}, output budget {line.output_budget:,}, {price}",
                      highlight=False, soft_wrap=True)
        for note in line.notes:
            console.print(f"    note: {note}", highlight=False, soft_wrap=True)
    requests = sum(line.requests for line in lines)
    table_info = price_table()
    console.print(f"total: {requests} requests, estimated at most {money(total_usd(lines))} for the priced models\n"
                  "est. = input tokens at the input rate + every request using its whole output budget at the output "
                  f"rate; batch = the same at Batch API rates. {TEXT_METHOD}; {IMAGE_METHOD}; only the first judging "
                  f"round is planned. Prices: references/prices.json, read {table_info['date']} (each model's source "
                  "URL is in the file); a model not in it (a local server, the offline judge, a deployment name) has "
                  "no price.", highlight=False)


def refusal(lines: list[Line], max_cost: float) -> str | None:
    """The message for --max-cost, or None when the estimate fits."""
    estimate = total_usd(lines)
    if estimate <= max_cost:
        return None
    return (f"the estimated cost ${estimate:,.4f} (input + the whole output budget, at the standard rate) is over "
            f"--max-cost ${max_cost:,.4f}: nothing was started. See the plan with --dry-run; raise --max-cost, run "
            "fewer items (--limit N), lower the output budget (--judge-param max_tokens=N, --model-args max_tokens=N), "
            "or choose a cheaper judge (--judge openai:gpt-4o-mini).")
