"""Judges, built from a spec string: each is a `JudgeBase` (judges/base.py), whose
`async judge(request) -> Judgment` reads a caption as the request's role asks.

Specs: `openai:<model-snapshot>` (any OpenAI-compatible server), `azure:<deployment>` (Azure's classic
endpoints), `offline` (the default: an
approximation on the CPU), `fake:perfect|zero|fail` (tests).
"""

from __future__ import annotations

import os
from typing import Any

from ..types import AnyCapError
from .base import JudgeBase


def make_judge(spec: str | None, *, base_url: str | None = None, key_file: str | None = None,
               concurrency: int = 16, params: dict[str, Any] | None = None, **options: Any) -> JudgeBase:
    """`params` are --judge-param settings: the chat client's own (reasoning_effort, max_tokens, family,
    structured, api_version, ...) and anything else, which is sent to the server as is (extra_body)."""
    kind, _, arg = (spec or "offline").partition(":")
    if kind == "offline":
        from .offline import OfflineJudge

        return OfflineJudge()
    if kind == "fake":
        from .fake import FakeJudge

        return FakeJudge(arg or "perfect")
    if kind in ("openai", "azure"):
        if not arg:
            raise AnyCapError(f"--judge {kind}:<model> needs a model snapshot (for azure: the deployment name), "
                              "e.g. openai:gpt-4o-2024-08-06")
        from ..chat import CLIENT_PARAMS, read_api_key
        from .openai_judge import OpenAIJudge

        params = dict(params or {})
        client = {k: params.pop(k) for k in CLIENT_PARAMS if k in params}
        api_version = client.pop("api_version", None)
        if kind == "azure":
            api_version = api_version or os.environ.get("OPENAI_API_VERSION")
            if not api_version:
                raise AnyCapError("--judge azure:<deployment> needs an API version: --judge-param "
                                  "api_version=2024-10-21 (or set OPENAI_API_VERSION); for Azure's v1 endpoint use "
                                  "--judge openai:<deployment> --judge-base-url https://RESOURCE.openai.azure.com/openai/v1/")
        return OpenAIJudge(arg, kind=kind, base_url=base_url, concurrency=concurrency, azure_api_version=api_version,
                           api_key=read_api_key(key_file, base_url, azure=kind == "azure"),
                           extra_body=params, **{**options, **client})
    raise AnyCapError(f"unknown judge '{spec}': use openai:<model>, azure:<deployment>, offline, or "
                      "fake:perfect|zero|fail")
