"""The statistics pages, computed ahead of time: this Jalali year's report of every province and
of the whole country (and last year's, until its final figures are kept), once an hour by the
cron schedule (jobs/cron.py). A page then reads one row instead of two years of history
(workflow/models/statistics.py)."""
from __future__ import annotations

import logging
import time

from workflow.services import statistics

log = logging.getLogger(__name__)


def refresh() -> str:
    """The rq job and `flask jobs statistics`: every report of the years due, each province
    in its own transaction."""
    from workflow import db

    from .context import app_context

    started = time.perf_counter()
    with app_context(), db.new_session() as session:
        years = statistics.years_to_refresh(session)
        kept = sum(statistics.refresh(session, year) for year in years)
    text = f"statistics of {', '.join(map(str, years))}: {kept} reports in {time.perf_counter() - started:.1f} s"
    log.info("%s", text)
    return text
