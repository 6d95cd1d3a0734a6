"""anycapeval: an evaluation harness for controllable captioning of images, videos and audio."""

__version__ = "0.1.0"
