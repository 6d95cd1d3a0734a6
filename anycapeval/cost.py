"""Prices and token estimates: what a run will cost before it starts, and what it cost after.

Prices come from `references/prices.json` (USD per 1M tokens, dated, with the page each was read
from). Before a run, input tokens are *estimated*: text at about 4 characters per token (no tokenizer
is a dependency), images by OpenAI's published tile rule for gpt-4o-class models, a video as its
frames, audio as unknown. After a run, the usage each API reply reported is priced exactly: uncached
prompt tokens at the input rate, cached ones at the cached-input rate, completion tokens (reasoning
tokens are part of them) at the output rate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

CHARS_PER_TOKEN = 4
TEXT_METHOD = "text ~4 characters per token (no tokenizer)"
IMAGE_METHOD = ("images: 85 + 170 per 512-px tile after fitting in 2048x2048 and scaling the shortest side to 768 "
                "(OpenAI's gpt-4o rule; 'low' detail 85); video = frames x image; audio unknown")
USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens")


@lru_cache(maxsize=1)
def price_table() -> dict[str, Any]:
    text = resources.files("anycapeval.references").joinpath("prices.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def price_for(spec_or_model: str) -> dict[str, Any] | None:
    """The table's row for `openai:<model>` / `<model>`: the exact name, else None (an unknown or
    local model has no price). Azure deployments are named by their owner, so they are not priced."""
    kind, sep, model = spec_or_model.partition(":")
    if sep and kind != "openai":
        return None
    row = price_table()["models"].get(model if sep else spec_or_model)
    return dict(row) if row else None


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def image_tokens(width: int, height: int, detail: str = "high") -> int:
    """OpenAI's tile rule for gpt-4o-class models: fit within 2048x2048, then scale so the shortest
    side is 768 (only ever down), count 512-px tiles; 170 tokens a tile plus 85. 'low' is 85."""
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return 85 + 170 * tiles


def shrunk(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The size after anycapeval's own resize (media._shrink: the longer side to max_side)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def usd(tokens: int, rate: float | None) -> float | None:
    return None if rate is None else tokens * rate / 1e6


def usage_usd(usage: dict[str, int], price: dict[str, Any] | None) -> float | None:
    """What the reported usage cost: cached prompt tokens at the cached rate (the input rate where
    the table has none), the rest of the prompt at the input rate, completion at the output rate."""
    if price is None:
        return None
    prompt, cached = usage.get("prompt_tokens", 0), usage.get("cached_tokens", 0)
    cached_rate = price.get("cached_input")
    cached_rate = price["input"] if cached_rate is None else cached_rate
    return ((prompt - cached) * price["input"] + cached * cached_rate
            + usage.get("completion_tokens", 0) * price["output"]) / 1e6


def batch_price(price: dict[str, Any] | None) -> dict[str, Any] | None:
    """The Batch API rates as a price row (cached input at the batch input rate), or None when the
    table has no batch price for the model."""
    if price is None or price.get("batch_input") is None or price.get("batch_output") is None:
        return None
    return {"input": price["batch_input"], "cached_input": price["batch_input"], "output": price["batch_output"]}


class CostTally:
    """The running sums behind `actual_cost`, fed row by row (a run never holds all its rows) and
    merged in row order, so the result equals `actual_cost` over the same rows."""

    GROUPS = (("systems", "system"), ("judges", "judge"))  # group, the row field naming the spec

    def __init__(self) -> None:
        self.totals: dict[str, dict[str, dict[str, int]]] = {"systems": {}, "judges": {}}
        self.batch_usage: dict[tuple[str, str], dict[str, int]] = {}  # (group, spec) -> the batch rows' usage

    def add(self, group: str, rows: Iterable[dict[str, Any]]) -> None:
        key = dict(self.GROUPS)[group]
        for row in rows:
            usage = row.get("usage") or {}
            if not usage:
                continue
            self._count(self.totals[group], row[key], usage, 1)
            if row.get("batch_id"):
                self._count(self.batch_usage, (group, row[key]), usage, 1)

    @staticmethod
    def _count(into: dict[Any, dict[str, int]], spec: Any, usage: dict[str, int], requests: int) -> None:
        entry = into.setdefault(spec, {"requests": 0, **{f: 0 for f in USAGE_FIELDS}})
        entry["requests"] += requests
        for name in USAGE_FIELDS:
            entry[name] += int(usage.get(name, 0) or 0)

    def merge(self, other: CostTally) -> None:
        """Add `other`'s rows as if they came after this tally's."""
        for group, _ in self.GROUPS:
            for spec, entry in other.totals[group].items():
                self._count(self.totals[group], spec, entry, entry["requests"])
        for pair, entry in other.batch_usage.items():
            self._count(self.batch_usage, pair, entry, entry["requests"])

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {group: {spec: dict(entry) for spec, entry in by_spec.items()}
                               for group, by_spec in self.totals.items()}
        known = []
        for group in ("systems", "judges"):
            for spec, entry in out[group].items():
                price = price_for(spec)
                batched = self.batch_usage.get((group, spec))
                if batched is None:
                    entry["usd"] = usage_usd(entry, price)
                else:
                    entry["batch_requests"] = batched["requests"]
                    online = {f: entry[f] - batched[f] for f in USAGE_FIELDS}
                    parts = (usage_usd(online, price), usage_usd(batched, batch_price(price)))
                    entry["usd"] = None if None in parts else sum(p for p in parts if p is not None)
                if entry["usd"] is not None:
                    known.append(entry["usd"])
        out["usd"] = sum(known) if known else None
        out["prices"] = {"date": price_table()["date"], "file": "references/prices.json"}
        return out


def actual_cost(prediction_rows: Iterable[dict[str, Any]], judgment_rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """{"systems": {spec: totals}, "judges": {spec: totals}, "usd": sum or None}; totals are the
    requests that reported usage, the summed USAGE_FIELDS, and usd (None when the model has no price).
    Rows answered through the Batch API (`batch_id`) are priced at the batch rates and counted in
    `batch_requests`."""
    tally = CostTally()
    tally.add("systems", prediction_rows)
    tally.add("judges", judgment_rows)
    return tally.result()


def money(value: float | None) -> str:
    return "no price" if value is None else f"${value:,.4f}"
