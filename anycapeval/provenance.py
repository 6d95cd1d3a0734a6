"""What a run's manifest records about the code that made it: the git revision and package versions."""

from __future__ import annotations

from pathlib import Path


def git_revision() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def package_versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "openai", "pydantic", "sentence-transformers", "torch", "transformers",
                "accelerate", "tokenizers", "av", "pillow", "soundfile", "librosa"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
