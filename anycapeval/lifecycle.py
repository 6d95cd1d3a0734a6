"""Pinned judge snapshots that their provider has announced it will shut down.

`references/model_lifecycle.json` holds each snapshot's announced shutdown date, the replacement the
provider recommends, the successor this project suggests (README, "Expiring judges") and the page the
dates were read from. A run warns when its judge is past, or within 60 days of, its shutdown.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from importlib import resources
from typing import Any

WARN_DAYS = 60


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    text = resources.files("anycapeval.references").joinpath("model_lifecycle.json").read_text(encoding="utf-8")
    return json.loads(text)


def shutdown_warning(model: str, today: dt.date | None = None) -> str | None:
    """A warning for `model` (a snapshot or alias) when it is shut down or will be within WARN_DAYS."""
    facts = table().get("models", {}).get(model.rsplit("/", 1)[-1])
    if not facts or not facts.get("shutdown"):
        return None
    today = today or dt.date.today()
    shutdown = dt.date.fromisoformat(facts["shutdown"])
    days = (shutdown - today).days
    if days > WARN_DAYS:
        return None
    successor = facts.get("successor") or facts.get("replacement")
    when = f"was shut down on {shutdown}" if days <= 0 else f"shuts down on {shutdown} ({days} days from now)"
    advice = f"; the README suggests {successor} as its successor (see 'Expiring judges')" if successor else ""
    return (f"judge snapshot {model} {when}, as announced at {table().get('source', 'the provider')} "
            f"(checked {table().get('checked', '?')}){advice}. Numbers from another snapshot are not the paper's.")
