"""Benchmark readers: one module per benchmark, each turning its released files into `Item`s.

`anycapeval.data.load_items` picks the reader by the task's `dataset`; a reader knows the files'
layout and nothing of scoring or judging.
"""
