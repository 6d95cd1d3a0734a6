"""A tiny, self-contained AnyCapEval-style demo task set.

The six JSONL files under ``data/`` follow the official AnyCapEval record schema. The media they point
at are not shipped: :func:`ensure_demo_media` draws the images, renders the videos and synthesizes the
audio clips deterministically, so the demo runs offline with nothing downloaded.
"""

from anycapeval.demo.media import DEMO_MEDIA, DEMO_MEDIA_VERSION, ensure_demo_media

__all__ = ["DEMO_MEDIA", "DEMO_MEDIA_VERSION", "ensure_demo_media"]
