"""Entry point for gunicorn, `flask --app wsgi` and the rq worker."""
from workflow import create_app

app = create_app()
