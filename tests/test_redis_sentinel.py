"""Redis through Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_MASTER): the web enqueues into the
master Sentinel names, /readyz pings it, a worker started the same way runs the jobs, and after a
failover the same processes follow the new master without a new configuration.

A private master, replica and sentinel are started here on free loopback ports (redis-server
is on every machine that runs Redis); the shared test Redis is not touched.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from tests.conftest import build_app
from tests.live_server import free_port
from tests.support import Api, World
from workflow import redis_conn

ROOT = Path(__file__).resolve().parent.parent
MASTER_NAME = "ngo-test-master"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.master_port, self.replica_port, self.sentinel_port = free_port(), free_port(), free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _start(self, name: str, args: list[str]) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen([REDIS_SERVER, *args], cwd=self.tmp, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def start(self) -> "Cluster":
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._start("master", ["--port", str(self.master_port), *common])
        self._start("replica", ["--port", str(self.replica_port), *common,
                                "--replicaof", "127.0.0.1", str(self.master_port)])
        _wait(lambda: redis.Redis(port=self.master_port).ping(), 10, "the master")
        _wait(lambda: redis.Redis(port=self.replica_port).info("replication")["master_link_status"] == "up",
              15, "the replica to sync")
        # Started once the replica is attached, the sentinel's first look at the master finds it.
        conf = self.tmp / "sentinel.conf"
        conf.write_text(f"port {self.sentinel_port}\nbind 127.0.0.1\n"
                        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 1\n"
                        f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                        f"sentinel failover-timeout {MASTER_NAME} 5000\n")
        self._start("sentinel", [str(conf), "--sentinel"])
        _wait(lambda: redis.Redis(port=self.sentinel_port).sentinel_master(MASTER_NAME)["num-slaves"] >= 1,
              15, "the sentinel to see the replica")
        return self

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    @property
    def config(self) -> dict[str, Any]:
        return {"REDIS_SENTINELS": f"127.0.0.1:{self.sentinel_port}",
                "REDIS_SENTINEL_MASTER": MASTER_NAME}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not Path(REDIS_SERVER).exists():
        if CI:
            pytest.fail("redis-server is missing")
        pytest.skip("redis-server is not installed")
    c = Cluster(tmp_path).start()
    try:
        yield c
    finally:
        c.stop()


def test_sentinel_addresses_are_read_strictly() -> None:
    assert redis_conn.sentinel_addresses(" a:26380, b ,[::1]:26381") == [
        ("a", 26380), ("b", 26379), ("::1", 26381)]
    with pytest.raises(ValueError):
        redis_conn.sentinel_addresses("a:port")
    with pytest.raises(ValueError):
        redis_conn.sentinel_addresses(" , ")
    assert not redis_conn.configured({"REDIS_URL": "", "REDIS_SENTINELS": ""})
    assert redis_conn.configured({"REDIS_SENTINELS": "a:1"})


@pytest.mark.slow
def test_web_and_worker_use_the_master_sentinel_names_and_follow_a_failover(
        cluster: Cluster, backend: Any, app: Flask, world: World, tmp_path: Path) -> None:
    web = build_app(app.config["DATABASE_URL"], tmp_path, None, **cluster.config)
    api = Api(web.test_client(), world)
    master = redis.Redis(port=cluster.master_port)
    try:
        assert web.test_client().get("/readyz").get_json()["checks"]["redis"]["ok"] is True
        case_id = api.ready()
        api.advance(case_id, ("submit", "ngo"))
        r = api.post(f"/api/v1/applications/{case_id}/transitions", "intake",
                     {"action": "accept", "version": 2, "comment": "ok"},
                     headers={"X-Request-ID": "via-sentinel"})
        assert r.status_code == 200, r.get_json()
        assert master.llen("rq:queue:default") == 3  # the three notices, on the master Sentinel named

        # A worker configured the same way (no REDIS_URL at all) runs them.
        env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": "", **cluster.config,
               "SECRET_KEY": "x" * 64, "SMTP_HOST": "", "LOG_FORMAT": "json",
               "UPLOAD_DIR": str(tmp_path / "up")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        out = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker", "--burst"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert master.llen("rq:queue:default") == 0
        assert out.stderr.count('"message": "job finished') == 3, out.stderr

        # The master dies; Sentinel promotes the replica; the same app enqueues into it.
        cluster.procs["master"].terminate()
        cluster.procs["master"].wait(timeout=10)
        sentinel = redis.Redis(port=cluster.sentinel_port)
        _wait(lambda: int(sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)[1]) == cluster.replica_port,
              30, "the failover")
        promoted = redis.Redis(port=cluster.replica_port)
        _wait(lambda: promoted.info("replication")["role"] == "master", 15, "the replica to become master")
        r = api.post(f"/api/v1/applications/{case_id}/transitions", "expert",
                     {"action": "recommend_approval", "version": 3, "comment": "ok"})
        assert r.status_code == 200, r.get_json()
        r = api.post(f"/api/v1/applications/{case_id}/transitions", "director",
                     {"action": "approve", "version": 4, "comment": "ok"})
        assert r.status_code == 200, r.get_json()
        _wait(lambda: promoted.llen("rq:queue:default") == 3, 10, "the jobs on the new master")
        readyz = web.test_client().get("/readyz").get_json()
        assert readyz["checks"]["redis"]["ok"] is True, readyz
    finally:
        for key in ("db_engine", "health_db"):
            if key in web.extensions:
                web.extensions[key].dispose()
