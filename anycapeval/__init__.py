"""anycapeval: an evaluation harness for controllable captioning of images, videos and audio.

`anycapeval.evaluate(model=..., tasks=..., judge=...)` and `anycapeval.load_run(dir)` return
`Results` (see anycapeval/api.py); they are imported on first use, so `import anycapeval` stays
light (no torch) and `anycapeval --help` fast.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Results", "evaluate", "load_run", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Results", "evaluate", "load_run"):
        from . import api

        return getattr(api, name)
    if name == "leaderboard":  # anycapeval.leaderboard.build(runs) -> DataFrame
        import importlib

        return importlib.import_module(f"{__name__}.leaderboard")
    raise AttributeError(f"module 'anycapeval' has no attribute {name!r}")
