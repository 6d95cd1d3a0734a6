"""Task definitions (YAML) and judge prompt templates, shipped as package data `anycapeval.tasks`."""
