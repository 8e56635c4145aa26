"""Operations across processes: gunicorn's workers summed into one /metrics (with the deploy
configuration itself), an rq worker in a process of its own (as on another machine) carrying the
request id into its log lines and serving its own metrics port, and the deployment files checked
by the programs that will read them (gunicorn --check-config, nginx -t).
"""
from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.live_server import Gunicorn, free_port, stop_group
from tests.test_ops import json_lines, sample
from workflow.config import Config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, str]:
    """One request on a new connection (so gunicorn's workers take turns accepting)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "PROMETHEUS_"))}
    env.update(SECRET_KEY="x" * 64, LOG_FORMAT="json", **extra)
    return env


# -- gunicorn: several workers, one set of numbers ---------------------------------------------

def test_gunicorn_config_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """gunicorn itself loads deploy/gunicorn.conf.py and the app (--check-config), and the
    settings are the ones docs/deploy.md describes."""
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    out = subprocess.run([gunicorn, "--check-config", "-c", str(GUNICORN_CONF), "wsgi:app"], cwd=ROOT,
                         env=_env(DATABASE_URL="sqlite:///:memory:"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    from gunicorn.config import Config as GunicornConfig
    from gunicorn.app.base import Application

    monkeypatch.setenv("GUNICORN_WORKERS", "7")
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    loader = Application.__new__(Application)
    loader.cfg = GunicornConfig()
    loader.load_config_from_file(str(GUNICORN_CONF))
    cfg = loader.cfg
    assert cfg.workers == 7 and cfg.worker_class_str == "gthread" and cfg.threads == 2
    assert cfg.max_requests == 5000 and cfg.max_requests_jitter == 500
    assert cfg.graceful_timeout == 30 and cfg.timeout == 60 and cfg.keepalive == 75
    assert cfg.accesslog is None and cfg.preload_app is False
    assert cfg.bind == ["127.0.0.1:8000"] and cfg.control_socket_disable is True
    assert cfg.child_exit.__name__ == "child_exit" and cfg.on_starting.__name__ == "on_starting"

    # on_starting empties the metrics directory systemd gives it (values of an earlier run would
    # be added in), or makes one when run by hand; on_exit removes only the one it made.
    class Server:
        class log:  # noqa: N801 - gunicorn's attribute
            @staticmethod
            def info(*_args: Any) -> None:
                pass

    given = tmp_path / "given"
    given.mkdir()
    (given / "counter_999999.db").write_bytes(b"an earlier run")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    cfg.on_starting(Server)
    assert given.is_dir() and not list(given.iterdir())
    cfg.on_exit(Server)
    assert given.is_dir()
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    cfg.on_starting(Server)
    made = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert made.is_dir() and made != given
    cfg.on_exit(Server)
    assert not made.exists()


@pytest.mark.slow
def test_gunicorn_workers_are_summed_and_a_dead_workers_counts_kept(tmp_path: Path) -> None:
    """deploy/gunicorn.conf.py with two workers: a scrape of either sums both; a worker that
    exits leaves its counters (history) and child_exit removes its live gauge. Started as by
    hand, without PROMETHEUS_MULTIPROC_DIR: the configuration makes the directory itself."""
    server = Gunicorn("wsgi:app", _env(DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite'}"),
                      workers=2, threads=2, extra_args=["-c", str(GUNICORN_CONF)])
    prom = None
    try:
        server.start(ready_path="/healthz", ready_status=200)
        (where,) = re.findall(r"prometheus multiprocess directory: (\S+?)\"", server.log())
        prom = Path(where)
        pids = [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", server.log())]
        assert len(pids) == 2

        def healthz_count() -> float:
            status, text = get(server.port, "/metrics")
            assert status == 200, text
            return sample(text, "workflow_http_requests_total", endpoint="health.healthz", method="GET",
                          status="2xx")

        before = healthz_count()

        def writers() -> set[int]:
            return {int(p.stem.split("_")[-1]) for p in prom.glob("counter_*.db")}

        # Which worker accepts a connection is the kernel's choice: one may take a whole burst on
        # a busy machine. Concurrent bursts until both have served some (each burst counted).
        sent = 0
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:
            while sent == 0 or (not writers() >= set(pids) and time.monotonic() < deadline):
                statuses = list(pool.map(lambda _i: get(server.port, "/healthz")[0], range(40)))
                assert statuses == [200] * 40
                sent += 40
        # Both workers wrote their own files, and the scrape summed them.
        assert writers() >= set(pids)
        assert healthz_count() == before + sent

        victim = pids[0]
        assert (prom / f"gauge_livesum_{victim}.db").exists()
        os.kill(victim, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(re.findall(r"Booting worker with pid", server.log())) < 3:
            time.sleep(0.1)
        assert len(re.findall(r"Booting worker with pid", server.log())) == 3, server.log_tail()
        time.sleep(0.3)
        assert not (prom / f"gauge_livesum_{victim}.db").exists()  # child_exit ran
        assert (prom / f"counter_{victim}.db").exists()
        assert healthz_count() == before + sent  # the dead worker's requests still count
        # Request lines are JSON from the app, with a request id; probes are not among them.
        status, _text = get(server.port, "/no/such/page", headers={"X-Request-ID": "gunicorn-req-1"})
        assert status == 404
        time.sleep(0.3)
        lines = [line for line in json_lines(server.log()) if line.get("logger") == "workflow.request"]
        assert [line["path"] for line in lines] == ["/no/such/page"]
        assert lines[0]["request_id"] == "gunicorn-req-1" and lines[0]["status"] == 404
    finally:
        server.close()
    assert prom is not None and not prom.exists()  # on_exit removed the directory it made


# -- an rq worker in its own process -----------------------------------------------------------

@pytest.mark.redis
@pytest.mark.slow
def test_worker_carries_the_request_id_and_serves_its_own_metrics(
        api: Any, app: Flask, redis_url: str, tmp_path: Path) -> None:
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"))
    r = api.post(f"/api/v1/applications/{case_id}/transitions", "intake",
                 {"action": "accept", "version": 2, "comment": "ok"},
                 headers={"X-Request-ID": "from-the-web-7"})
    assert r.status_code == 200, r.get_json()
    port = free_port()
    token = "worker-metrics-token-1"
    log_path = tmp_path / "worker.log"
    env = _env(DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL=redis_url, METRICS_TOKEN=token,
               SMTP_HOST="", UPLOAD_DIR=str(tmp_path / "uploads"))
    with log_path.open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker",
                                   "--metrics-port", str(port)], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        finished: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(finished) < 3:
            assert worker.poll() is None, log_path.read_text()
            finished = [x for x in json_lines(log_path.read_text())
                        if x["message"].startswith("job finished")]
            time.sleep(0.2)
        lines = json_lines(log_path.read_text())
        assert len(finished) == 3, log_path.read_text()
        in_jobs = [x for x in lines if x.get("job_id")]
        # Every line logged while the three jobs ran (ours, rq's, the job's) names the request.
        assert in_jobs and {x["request_id"] for x in in_jobs} == {"from-the-web-7"}
        assert {x["logger"] for x in in_jobs} >= {"jobs.worker", "rq.worker"}
        assert {x["job"] for x in in_jobs} == {"jobs.notify.deliver"}
        assert all(x["status"] == "finished" and x["duration_ms"] > 0 for x in finished)

        status, text = get(port, "/metrics")  # loopback: no token needed
        assert status == 200, text
        assert sample(text, "workflow_job_wait_seconds_count", func="jobs.notify.deliver") == 3
        assert sample(text, "workflow_job_duration_seconds_count", func="jobs.notify.deliver",
                      status="finished") == 3
        assert get(port, "/metrics", {"X-Forwarded-For": "203.0.113.9"})[0] == 401
        assert get(port, "/metrics", {"X-Forwarded-For": "203.0.113.9",
                                      "Authorization": f"Bearer {token}"})[0] == 200
        assert get(port, "/anything-else")[0] == 404
    finally:
        stop_group(worker, timeout=20)


# -- nginx -------------------------------------------------------------------------------------

def _nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def test_nginx_lets_through_every_request_the_app_accepts() -> None:
    """client_max_body_size is the app's limit (MAX_UPLOAD_BYTES + form fields) rounded up to
    a MiB: the app, not nginx, refuses a statute that is too large, with its own message."""
    text = (DEPLOY / "nginx" / "ngo-permits.conf").read_text()
    (size,) = re.findall(r"^\s*client_max_body_size (\d+)m;", text, re.M)
    app_limit = Config().MAX_CONTENT_LENGTH
    assert app_limit <= int(size) * 1024 * 1024 < app_limit + 1024 * 1024
    assert re.search(r"location = /metrics \{\s*return 404;", text)


def test_nginx_configuration_is_valid(tmp_path: Path) -> None:
    nginx = _nginx()
    if nginx is None:
        if CI:
            pytest.fail("nginx is not installed; `make test` installs it (the deploy-tools step)")
        pytest.skip("nginx is not installed (make test installs it)")
    # A throwaway certificate where the real one will be, and the proxy include beside it.
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=permits.example.ir", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    site = (DEPLOY / "nginx" / "ngo-permits.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/permits.example.ir/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/permits.example.ir/privkey.pem", str(key))
    site = site.replace("/etc/nginx/ngo-permits-proxy.conf", str(DEPLOY / "nginx" / "ngo-permits-proxy.conf"))
    site = site.replace("/var/log/nginx/", f"{tmp_path}/")
    assert str(cert) in site and str(key) in site and "ngo-permits-proxy.conf" in site
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  include /etc/nginx/mime.types;\n  include {tmp_path}/site.conf;\n}}\n")
    out = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                          "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "syntax is ok" in out.stderr and "test is successful" in out.stderr
    # And it fails on a broken one: the check is real.
    (tmp_path / "site.conf").write_text(site.replace("proxy_pass http://ngo_permits_web;", "proxy_pass;", 1))
    broken = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                             "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True, timeout=60)
    assert broken.returncode != 0


def test_systemd_units_run_what_the_docs_say() -> None:
    """The units start the commands this repository has, with the options they take."""
    web = (DEPLOY / "systemd" / "ngo-permits-web.service").read_text()
    worker = (DEPLOY / "systemd" / "ngo-permits-worker@.service").read_text()
    cron = (DEPLOY / "systemd" / "ngo-permits-cron.service").read_text()
    assert "gunicorn -c deploy/gunicorn.conf.py wsgi:app" in web
    assert "Environment=PROMETHEUS_MULTIPROC_DIR=/run/ngo-permits-metrics" in web
    assert "RuntimeDirectory=ngo-permits-metrics" in web
    assert "flask --app wsgi jobs worker --metrics-port %i" in worker
    assert all("UnsetEnvironment=PROMETHEUS_MULTIPROC_DIR" in unit for unit in (worker, cron))
    assert "flask --app wsgi jobs cron" in cron
    from workflow import create_app
    from workflow.config import TestConfig

    cli = create_app(TestConfig(DATABASE_URL="sqlite:///:memory:")).test_cli_runner()
    help_text = cli.invoke(args=["jobs", "worker", "--help"]).output
    assert "--metrics-port" in help_text and "--metrics-host" in help_text
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for name in ("ngo-permits-web.service", "ngo-permits-worker@.service", "ngo-permits-cron.service",
                 "gunicorn.conf.py", "ngo-permits.conf", "ngo-permits-proxy.conf", "env.example"):
        assert name in docs, name
