"""The periodic schedule, for `rq cron jobs/cron.py` or `flask --app wsgi jobs cron`.

The sweep every minute, the statistics pages every hour. The cron process only enqueues; a
worker runs the jobs.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from rq import cron

from jobs.statistics import refresh as refresh_statistics
from jobs.sweep import run as sweep

SWEEP_EVERY_SECONDS = 60


def schedule(statistics_every: int) -> list[tuple[Callable[..., Any], int, int]]:
    """(job, every how many seconds, its timeout): one list for both ways of running cron."""
    return [(sweep, SWEEP_EVERY_SECONDS, 600), (refresh_statistics, statistics_every, 3600)]


for _job, _every, _timeout in schedule(int(os.environ.get("STATISTICS_REFRESH_SECONDS", 3600))):
    cron.register(_job, os.environ.get("RQ_QUEUE", "default"), interval=_every, job_timeout=_timeout)
