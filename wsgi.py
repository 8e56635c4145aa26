"""Entry point for gunicorn, `flask --app wsgi` and the rq worker."""
import gc

from workflow import create_app

app = create_app()
# What start-up built (modules, mappers, compiled templates: ~125,000 objects) lives as long as
# the process. Left in the collector's care, every full collection walks all of it, ~50 ms
# measured here, paid by whichever request triggers it; frozen, the collector skips them.
gc.freeze()
