"""The periodic schedule, for `rq cron jobs/cron.py` or `flask --app wsgi jobs cron`.

One entry: the sweep, every minute. The cron process only enqueues; a worker runs the sweep.
"""
import os

from rq import cron

from jobs.sweep import run

SWEEP_EVERY_SECONDS = 60

cron.register(run, os.environ.get("RQ_QUEUE", "default"), interval=SWEEP_EVERY_SECONDS, job_timeout=600)
