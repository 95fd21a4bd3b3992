"""Optional read-through cache of GET /orders/{id} in Redis, on when REDIS_URL is set
(without it the `redis` package is not even imported). An entry holds a view with the
stamp (version, updated_at) of the order row it was built from, and is served only while
the row still has that stamp: every transition changes it, so no invalidation is needed
(docs/architecture.md, "The order cache"). Authorisation is the caller's, as for a
database read. Redis trouble never fails a read: it falls back to the database and leaves
the cache alone for BACKOFF_S, so a dead Redis costs one short timeout, not one per request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import ValidationError

from common.pg import Tx
from common.resources import Resources
from common.settings import Settings
from functions.api import sql
from functions.api.order_views import OrderDetail, fetch_detail

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger("saga.api.cache")

TTL_S = 3600  # entries of finished orders stay useful; superseded ones just expire
BACKOFF_S = 5.0  # after a Redis error, go straight to the database for this long
SOCKET_TIMEOUT_S = 0.25  # Redis answers in well under a millisecond when it is well


def redis_url(settings: Settings) -> str | None:
    return settings.redis_url.get_secret_value() if settings.redis_url else None


class OrderViewCache:
    def __init__(self, client: Redis, *, ttl_s: int = TTL_S) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._skip_until = 0.0  # monotonic time; a float store is atomic enough here
        self._lock = threading.Lock()

    def read(self, resources: Resources, order_id: UUID) -> OrderDetail | None:
        """The order's view (None if there is no such order), from the cache when the entry
        matches the order's current stamp, else from the database (and then cached)."""

        def work(tx: Tx) -> tuple[str, OrderDetail | None, bool] | None:
            tx.run(sql.REPEATABLE_READ)  # one snapshot for the stamp and the view
            current = stamp(tx, order_id)
            if current is None:
                return None
            cached = self._get(order_id, current)
            if cached is not None:
                return current, cached, True
            return current, fetch_detail(tx, order_id), False  # the same snapshot

        found = resources.transaction(work)
        if found is None:
            return None
        current, detail, from_cache = found
        if detail is not None and not from_cache:
            self._put(order_id, current, detail)
        return detail

    def close(self) -> None:
        self._client.close()

    # --- Redis, never fatal ------------------------------------------------------------

    def _get(self, order_id: UUID, current: str) -> OrderDetail | None:
        raw = self._call(lambda client: client.get(entry_key(order_id)))
        if not isinstance(raw, bytes):
            return None
        entry_stamp, _, view = raw.partition(b"\n")
        if entry_stamp.decode(errors="replace") != current:
            return None  # built from another version of the order: never served
        try:
            return OrderDetail.model_validate_json(view)
        except ValidationError:
            return None  # unreadable (a bug or a foreign writer): rebuild it

    def _put(self, order_id: UUID, current: str, detail: OrderDetail) -> None:
        value = current.encode() + b"\n" + detail.model_dump_json().encode()
        self._call(lambda client: client.set(entry_key(order_id), value, ex=self._ttl_s))

    def _call(self, command: Callable[[Redis], object]) -> object:
        from redis import RedisError

        if time.monotonic() < self._skip_until:
            return None
        try:
            return command(self._client)
        except RedisError as exc:
            with self._lock:
                first = time.monotonic() >= self._skip_until
                self._skip_until = time.monotonic() + BACKOFF_S
            if first:  # one line per outage, not one per request
                log.warning("order cache unavailable, reading the database for %.0f s",
                            BACKOFF_S, extra={"error.type": type(exc).__name__,
                                              "error.message": str(exc)[:200]})
            return None


def stamp(tx: Tx, order_id: UUID) -> str | None:
    """"version/updated_at" of the order row: changes with every committed transition."""
    row = tx.one(sql.ORDER_STAMP, {"order_id": order_id})
    if row is None:
        return None
    version, updated_at = row
    assert isinstance(updated_at, datetime)
    return f"{version}/{updated_at.isoformat()}"


def entry_key(order_id: UUID) -> str:
    # The view's shape is part of the key: after a deploy that changes OrderDetail, old
    # entries are simply never looked up again.
    return f"saga:order-view:{_shape()}:{order_id}"


_shape_lock = threading.Lock()
_shape_digest: list[str] = []


def _shape() -> str:
    with _shape_lock:
        if not _shape_digest:
            schema = json.dumps(OrderDetail.model_json_schema(), sort_keys=True)
            _shape_digest.append(hashlib.sha256(schema.encode()).hexdigest()[:12])
        return _shape_digest[0]


def connect_cache(settings: Settings) -> OrderViewCache | None:
    """A cache on REDIS_URL (its own connection pool), or None when unset."""
    url = redis_url(settings)
    if url is None:
        return None
    from redis import Redis  # only a process with REDIS_URL needs the package

    return OrderViewCache(Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S,
                                         socket_connect_timeout=SOCKET_TIMEOUT_S))
