"""Entry point for gunicorn, `flask --app wsgi` and the rq worker."""
import gc
import sys

from workflow import create_app, db, warm_up

app = create_app()
if "gunicorn" in sys.modules:
    # A web worker (gunicorn imports this module in each one; the CLI and the rq worker do not
    # serve pages): compile the queue's statements and templates now, not in its first requests,
    # and let each of its threads keep a database connection from request to request.
    warm_up(app)
    db.hold_connections(app)  # its threads serve until the worker exits
# What start-up built (modules, mappers, compiled templates: ~125,000 objects) lives as long as
# the process. Left in the collector's care, every full collection walks all of it, ~50 ms
# measured here, paid by whichever request triggers it; frozen, the collector skips them.
gc.freeze()
