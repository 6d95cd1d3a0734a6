"""Leaderboards from run directories: markdown, CSV and a self-contained HTML page with plots."""
