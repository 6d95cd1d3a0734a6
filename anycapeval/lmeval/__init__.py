"""The lm-eval bridge (generation side): task YAMLs that lm-eval loads with `--include_path`, so a
model lm-eval can run (hf-multimodal, hf-audiolm-qwen, an API model) writes the captions, and
`--log_samples` output goes straight to `anycapeval score --predictions`.

    lm_eval --model hf-multimodal --model_args pretrained=... --include_path "$(anycapeval lm-eval-path)" \\
        --tasks anycapeval_image_content --predict_only --log_samples --output_path out/
    anycapeval score --predictions out/*/samples_anycapeval_image_content_*.jsonl --tasks anycapeval_image_content

The items come from anycapeval's own loader (anycapeval/lmeval/tasks/utils.py), so lm-eval and
anycapeval read the same instructions, ids and media. Scoring stays here (see the README).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def task_folder() -> Path:
    """The folder to pass to lm-eval's --include_path."""
    return Path(__file__).parent / "tasks"


def register(sub: Any) -> None:
    p = sub.add_parser("lm-eval-path", help="print the folder of lm-eval task YAMLs (for lm_eval --include_path)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(handler=_print_path)


def _print_path(args: argparse.Namespace) -> int:
    print(task_folder())
    return 0
