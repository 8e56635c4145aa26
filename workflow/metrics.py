"""Prometheus metrics: what is counted, how a scrape is answered, and who may scrape.

Several gunicorn workers: with PROMETHEUS_MULTIPROC_DIR set (deploy/gunicorn.conf.py sets it)
prometheus_client keeps each process's values in files there and a scrape of any worker sums
them. Without it (a single process: tests, `flask jobs worker`) the values live in memory.

Labels are bounded on purpose: a route's endpoint name (never the raw path, which a client
chooses), a status class, the workflows' kinds and actions, the job functions.
"""
from __future__ import annotations

import functools
import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

F = TypeVar("F", bound=Callable[..., Any])
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter("workflow_http_requests", "HTTP requests answered, by route endpoint, method and "
                   "status class", ["endpoint", "method", "status"])
LATENCY = Histogram("workflow_http_request_duration_seconds", "Time from routing to the response's "
                    "headers, by route endpoint and status class", ["endpoint", "status"],
                    buckets=LATENCY_BUCKETS)
IN_PROGRESS = Gauge("workflow_http_requests_in_progress", "Requests being handled now",
                    multiprocess_mode="livesum")
TRANSITIONS = Counter("workflow_transitions", "Transitions the engine was asked for, by kind, action "
                      "and outcome (ok, or the error code that refused it)", ["kind", "action", "outcome"])
JOB_WAIT = Histogram("workflow_job_wait_seconds", "Time a job waited in its queue, from enqueued to "
                     "started", ["func"], buckets=JOB_BUCKETS)
JOB_DURATION = Histogram("workflow_job_duration_seconds", "Time a job ran, by function and how it ended",
                         ["func", "status"], buckets=JOB_BUCKETS)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


# -- the request path: children looked up once per label set, not per request ------------------

_request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    key = (endpoint, method, str(status // 100) + "xx")
    children = _request_children.get(key)
    if children is None:
        method_label = method if method in METHODS else "other"
        children = (REQUESTS.labels(endpoint, method_label, key[2]), LATENCY.labels(endpoint, key[2]))
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


_transition_children: dict[tuple[str, str, str], Any] = {}


def count_transition(kind: str, action: str, outcome: str) -> None:
    key = (kind, action, outcome)
    child = _transition_children.get(key)
    if child is None:
        child = _transition_children[key] = TRANSITIONS.labels(kind, action, outcome)
    child.inc()


@functools.cache
def _actions(kind: str) -> frozenset[str]:
    if kind == "permit":
        from .states.permit import PROCESS

        return frozenset(PROCESS.actions)
    from . import registry

    return frozenset(registry.get(kind).actions) if kind in registry.PROCESSES else frozenset()


def _action_label(kind: str, action: Any) -> str:
    return action if isinstance(action, str) and action in _actions(kind) else "unknown"


def counted_transitions(kind: str | None = None) -> Callable[[F], F]:
    """Count each call of a `fire(session, subject, action, …)`: "ok" when it returns, the
    refusal's code (conflict, forbidden, invalid, not_found) when it raises a WorkflowError,
    "error" for anything else (the database, say).
    `kind`: the subject's kind, or the same for every call (the permit's own machine). An
    action the process does not know is counted as "unknown": the label is never what a
    client typed."""
    from .errors import WorkflowError

    def decorate(fire: F) -> F:
        @functools.wraps(fire)
        def counted(session: Any, subject: Any, action: Any, *args: Any, **kwargs: Any) -> Any:
            # Read before firing: after a lost race the subject's session must be rolled back
            # before any attribute is loaded again, and the refusal must reach the caller intact.
            name = kind or subject.kind
            try:
                result = fire(session, subject, action, *args, **kwargs)
            except WorkflowError as exc:
                count_transition(name, _action_label(name, action), exc.code)
                raise
            except Exception:
                count_transition(name, _action_label(name, action), "error")
                raise
            count_transition(name, action, "ok")
            return result

        return counted  # type: ignore[return-value]

    return decorate


# -- rq queues, read from Redis when scraped ---------------------------------------------------

class QueueDepth(Collector):
    """Jobs per queue and state, read at scrape time in one round trip (no writes: rq's own
    `count` properties clean their registries first, which a scrape must not do)."""

    def __init__(self, connect: Any, queues: Iterable[str]) -> None:
        self.connect = connect  # () -> redis client with short timeouts, or None
        self.queues = list(queues)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from rq import Queue
        from rq.registry import (
            DeferredJobRegistry, FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry,
        )

        depth = GaugeMetricFamily("workflow_rq_jobs", "rq jobs by queue and state, read from Redis "
                                  "at scrape time", labels=["queue", "state"])
        up = GaugeMetricFamily("workflow_rq_up", "Whether Redis answered the scrape's queue read")
        conn = self.connect()
        if conn is None:
            up.add_metric([], 0)
            yield up
            return
        registries = {"started": StartedJobRegistry, "scheduled": ScheduledJobRegistry,
                      "failed": FailedJobRegistry, "deferred": DeferredJobRegistry}
        try:
            with conn.pipeline(transaction=False) as pipe:
                for name in self.queues:
                    pipe.llen(Queue.redis_queue_namespace_prefix + name)
                    for cls in registries.values():
                        pipe.zcard(cls.key_template.format(name))
                counts = pipe.execute()
        except Exception:  # noqa: BLE001 - any failure means: Redis did not answer
            up.add_metric([], 0)
            yield up
            return
        per_queue = 1 + len(registries)
        for i, name in enumerate(self.queues):
            row = counts[i * per_queue:(i + 1) * per_queue]
            depth.add_metric([name, "queued"], row[0])
            for state, value in zip(registries, row[1:]):
                depth.add_metric([name, state], value)
        up.add_metric([], 1)
        yield depth
        yield up


def exposition(extra: Collector | None = None) -> bytes:
    """The text a scrape receives: this process's metrics (or all processes' in multiprocess
    mode) and, if given, a collector read now (the queues)."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)
        if extra is not None:
            registry.register(extra)
        return generate_latest(registry)
    text = generate_latest(REGISTRY)
    if extra is not None:
        registry = CollectorRegistry()
        registry.register(extra)
        text += generate_latest(registry)
    return text


# -- who may scrape ----------------------------------------------------------------------------

PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


def _loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address((address or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def allowed(environ: Mapping[str, Any], token: str) -> int:
    """200 if this scrape may read the metrics, else the status to refuse it with.

    Loopback needs no token: a Prometheus agent on the machine itself. A request that came
    through a proxy is not a local scrape even when the proxy runs on this machine (its address
    is then 127.0.0.1 too), so one carrying proxy headers needs the token like any other.
    Others need `Authorization: Bearer METRICS_TOKEN`; without a configured token they cannot
    scrape at all.
    """
    if _loopback(environ.get("REMOTE_ADDR")) and not any(h in environ for h in PROXY_HEADERS):
        return 200
    if not token:
        return 403
    scheme, _sep, given = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return 200
    return 401


def refusal(status: int) -> tuple[bytes, list[tuple[str, str]]]:
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")]
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="metrics"'))
        return b"metrics: send Authorization: Bearer <METRICS_TOKEN>\n", headers
    return b"metrics: only from loopback, or with METRICS_TOKEN configured\n", headers


__all__ = ["CONTENT_TYPE_LATEST", "QueueDepth", "allowed", "count_transition", "exposition", "multiprocess",
           "observe_request", "refusal"]
