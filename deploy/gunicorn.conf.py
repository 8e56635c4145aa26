"""gunicorn settings for a web machine: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Every value can be changed from the environment (the systemd unit's EnvironmentFile) without
editing this file; docs/deploy.md explains the choices. Command-line flags override it too.
"""
import os
import shutil
import tempfile

_env = os.environ.get

# -- where and how many ------------------------------------------------------------------------
# The private address nginx proxies to; never a public interface.
bind = [_env("GUNICORN_BIND", "127.0.0.1:8000")]
# Threads let a process serve another request while one waits on PostgreSQL; more processes than
# cores keep both busy. Measured on 2 cores (bench/transitions.py): 3 workers x 2 threads
# led, 4 x 4 trailed (docs/deploy.md). Rule of thumb: cores + 1 workers, 2 threads each.
workers = int(_env("GUNICORN_WORKERS", (os.cpu_count() or 1) + 1))
worker_class = "gthread"
threads = int(_env("GUNICORN_THREADS", 2))

# -- time --------------------------------------------------------------------------------------
# A request that runs longer than this is killed and its worker replaced; the longest pages
# (statistics of the whole country, a 50,000-row CSV) finish in a few seconds.
timeout = int(_env("GUNICORN_TIMEOUT", 60))
# On restart or SIGTERM, requests in flight get this long to finish.
graceful_timeout = int(_env("GUNICORN_GRACEFUL_TIMEOUT", 30))
# nginx keeps idle connections to us for 60 s (keepalive_timeout in its upstream): we keep them
# longer, so it is always nginx that closes one and never a request sent on a closing socket.
keepalive = int(_env("GUNICORN_KEEPALIVE", 75))

# -- recycling ---------------------------------------------------------------------------------
# Replace each worker after about this many requests (slow leaks in any library stay bounded);
# the jitter keeps the workers from all restarting at the same moment.
max_requests = int(_env("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = int(_env("GUNICORN_MAX_REQUESTS_JITTER", 500))
# Each worker imports the app itself: database pools and Redis connections must not be shared
# across a fork.
preload_app = False

# gunicorn's control socket (gunicornc) is not used: `systemctl reload` replaces the workers
# gracefully, and its default place is under $HOME, which the unit hides (ProtectHome).
control_socket_disable = True

# -- behind nginx ------------------------------------------------------------------------------
# Trust X-Forwarded-Proto (so the app knows the request was HTTPS) only from the proxies.
forwarded_allow_ips = _env("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
proxy_allow_ips = forwarded_allow_ips
# The app logs every request itself, with its request id and user (LOG_FORMAT); gunicorn's
# access log would say it twice.
accesslog = None
errorlog = "-"
loglevel = _env("GUNICORN_LOGLEVEL", "info")
# The app's rule (workflow/config.py): JSON in production unless LOG_FORMAT says otherwise.
_production = "production" in (_env("FLASK_ENV", "").lower(), _env("WORKFLOW_CONFIG", "").lower())
if _env("LOG_FORMAT", "json" if _production else "text").lower() == "json":
    # gunicorn's own lines (boot, worker timeouts) as JSON too, through the app's formatter.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "workflow.logs.JsonFormatter"}},
        "handlers": {
            "error_console": {"class": "logging.StreamHandler", "formatter": "json",
                              "stream": "ext://sys.stderr"},
        },
        "loggers": {"gunicorn.error": {"level": loglevel.upper(), "handlers": ["error_console"],
                                       "propagate": False, "qualname": "gunicorn.error"}},
        # The app gives the root logger its handler (LOG_FORMAT); gunicorn's default one here
        # would print every app line twice.
        "root": {"level": "INFO", "handlers": []},
    }

# -- metrics from several processes ------------------------------------------------------------
# prometheus_client's multiprocess mode: each worker writes its values to files in
# PROMETHEUS_MULTIPROC_DIR and a scrape of any worker sums them all. The directory must be set
# before the workers import prometheus_client and be empty when gunicorn starts (values of a
# previous run would be added in). The systemd unit sets it (RuntimeDirectory, emptied by
# systemd on each start); run by hand, on_starting makes a temporary one, before any worker
# exists, so that every worker inherits it.
_made_metrics_dir = None


def on_starting(server):  # type: ignore[no-untyped-def]
    """In the master, before any worker: an empty metrics directory."""
    global _made_metrics_dir
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = _made_metrics_dir = tempfile.mkdtemp(prefix="ngo-permits-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        entry = os.path.join(path, name)
        if os.path.isdir(entry):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            os.unlink(entry)
    server.log.info("prometheus multiprocess directory: %s", path)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """A worker ended (recycled, timed out, killed): drop its share of the live gauge (requests
    in progress), which would otherwise count forever. Its counters and histograms stay: they
    are history, and a scrape keeps summing them."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_exit(server):  # type: ignore[no-untyped-def]
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)
