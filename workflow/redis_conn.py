"""A Redis client from the configuration: REDIS_URL, or the master that Sentinel names.

With Sentinel the clients ask the sentinels for the current master on every new connection
(redis-py's `SentinelConnectionPool`), so after a failover the web workers, the rq workers and
the cron process follow the new master without a restart or a changed URL.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from redis.sentinel import Sentinel


def configured(config: Mapping[str, Any]) -> bool:
    return bool(config.get("REDIS_SENTINELS") or config.get("REDIS_URL"))


def sentinel_addresses(text: str) -> list[tuple[str, int]]:
    """"h1:26379, h2:26379" → [("h1", 26379), ("h2", 26379)]; a missing port is Sentinel's 26379."""
    addresses = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host:
            host, port = item, "26379"
        if not port.isdigit():
            raise ValueError(f"REDIS_SENTINELS: {item!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    if not addresses:
        raise ValueError("REDIS_SENTINELS names no sentinel")
    return addresses


def connect(config: Mapping[str, Any], *, timeout: float | None = None) -> redis.Redis | None:
    """A new client, or None when no Redis is configured. `timeout` bounds connecting and each
    command (the health check's); None keeps redis-py's blocking default, which the rq worker
    needs for its long blocking pops."""
    timeouts = {} if timeout is None else {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    sentinels = config.get("REDIS_SENTINELS")
    if sentinels:
        sentinel_kwargs = dict(timeouts)
        if config.get("REDIS_SENTINEL_PASSWORD"):
            sentinel_kwargs["password"] = config["REDIS_SENTINEL_PASSWORD"]
        sentinel = Sentinel(sentinel_addresses(sentinels), sentinel_kwargs=sentinel_kwargs, **timeouts)
        return sentinel.master_for(config.get("REDIS_SENTINEL_MASTER") or "mymaster",
                                   db=int(config.get("REDIS_DB") or 0),
                                   password=config.get("REDIS_PASSWORD") or None)
    url = config.get("REDIS_URL")
    if not url:
        return None
    return redis.Redis.from_url(url, **timeouts)
