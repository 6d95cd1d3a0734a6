"""leaderboard.html as a person sees it: opened in headless Chromium, screenshotted, DOM dumped.

Debian's `chromium` is installed on first use when it is missing (`apt-get install -y chromium`, as root
or through sudo); the tests skip, saying why, when it cannot be.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_env
from PIL import Image

DEMO = Path(__file__).resolve().parents[1] / "anycapeval" / "demo" / "data"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                  "--disable-dev-shm-usage"]


def _install_chromium() -> str | None:
    """Path of a chromium binary, installing Debian's package if needed; None when that is impossible."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") is None:
        return None
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            subprocess.run([*prefix, *cmd], capture_output=True, env=env, timeout=900, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _install_chromium()
    if path is None:
        pytest.skip("headless Chromium is not installed and `apt-get install -y chromium` was not possible here")
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three fake-judged demo runs (one refining another) and their leaderboard.html."""
    root = tmp_path_factory.mktemp("lbhtml")
    env = cli_env(root / "cache")
    refs = []
    for path in sorted(DEMO.glob("*/*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            refs.append((path.stem, record["id"], record["conversations"][1]["value"]))
    for name, keep in (("short", 0.5), ("long", 1.0)):
        (root / f"{name}.jsonl").write_text("".join(
            json.dumps({"id": i, "task": t, "caption": " ".join(r.split()[:max(3, int(len(r.split()) * keep))])}) + "\n"
            for t, i, r in refs))
    runs = []
    for model in ("reference", f"predictions:{root / 'short.jsonl'}", f"predictions:{root / 'long.jsonl'}"):
        out = root / f"run{len(runs)}"
        result = subprocess.run([sys.executable, "-m", "anycapeval.cli", "run", "--model", model, "--tasks", "demo",
                                 "--judge", "fake:perfect", "--output", str(out)], capture_output=True, text=True,
                                env=env, cwd=root, timeout=600)
        assert result.returncode == 0, result.stderr
        runs.append(out)
    manifest = json.loads((runs[2] / "manifest.json").read_text())  # run2 refines run1's captions
    (runs[2] / "manifest.json").write_text(json.dumps({**manifest, "base": "predictions:short.jsonl"}))
    result = subprocess.run([sys.executable, "-m", "anycapeval.cli", "leaderboard", *map(str, runs), "--output",
                             str(root / "board")], capture_output=True, text=True, env=env, cwd=root, timeout=600)
    assert result.returncode == 0, result.stderr
    return root / "board" / "leaderboard.html"


def test_page_is_self_contained(page):
    html = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page must not load anything remote"
    assert "<style>" in html and html.count('src="data:image/png;base64,') >= 6 + 5  # 6 bar + 5 radar charts


def test_headless_chromium_shows_tables_and_plots(page, chromium, tmp_path):
    shot = tmp_path / "shot.png"
    result = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--screenshot={shot}", "--window-size=1400,1800",
                             page.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("L"), dtype=float)
    assert pixels.shape == (1800, 1400)
    assert pixels.std() > 20, "the screenshot is blank"
    assert (pixels < 128).mean() > 0.01  # text, table borders and plot lines are drawn
    # blue-ish bars of the first bar chart: the embedded figures are decoded and painted
    rgb = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    blue = (rgb[..., 2] > 150) & (rgb[..., 0] < 90) & (rgb[..., 1] > 90) & (rgb[..., 1] < 160)
    assert blue.sum() > 2000

    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    assert dom.count("<table") == 1 + 6  # the runs table and one table per demo task
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]{200,})"', dom)
    assert len(images) == 11
    assert "↳ Δ vs predictions:short.jsonl" in dom and "demo_video_style" in dom
