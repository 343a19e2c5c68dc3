"""Runners for the sweep tests (importable by Dask workers and pool processes)."""

from __future__ import annotations

import time

from carecheck.sweep import Job, run_job


def slow_run(job: Job) -> dict:
    """A run that takes a while, so a worker can be killed in the middle of it."""
    time.sleep(1.5)
    return run_job(job)
