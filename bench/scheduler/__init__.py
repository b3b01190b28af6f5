"""Scheduler benchmark: ``.venv/bin/python -m bench.scheduler [--patients N] [--timers N]``."""
