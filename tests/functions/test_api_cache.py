"""The optional Redis read-through cache of GET /orders/{id} (functions/api/cache.py),
against a real Redis: the session's own redis-server (tests/conftest.py `redis_url`;
REDIS_TEST_URL to use another one). Never skipped: without Redis the session fails.

The cache must never serve a status older than a committed change, whichever function
made it: the tests plant a recognisable view in Redis, change the order behind the API's
back (through common.order_state, as order-saga or timeouts do), and read it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from common.order_state import Status
from common.settings import Settings
from functions.api import cache
from functions.api.order_views import OrderDetail
from tests.functions.api_support import (
    advance,
    api_client,
    bearer,
    customer,
    place,
    product,
)

pytestmark = pytest.mark.integration

MARKER = "served from the cache"


@pytest.fixture(scope="module")
def redis_client(redis_url: str) -> Iterator[Any]:
    import redis  # a dependency of the image (functions/api/cache.py)

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=5)
    client.ping()
    yield client
    client.close()


@pytest.fixture
def cached_env(
    saga_env: Settings, redis_client: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    yield saga_env



@pytest.fixture
def client(cached_env: Settings) -> FlaskClient:
    """The api's client with the cache on (overrides tests/conftest.py's)."""
    return api_client()


def _get(client: FlaskClient, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    response = client.get(f"/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _plant_marker(redis_client: Any, order_id: str) -> None:
    """Rewrite the cached view so a read that is served from the cache is recognisable."""
    key = cache.entry_key(uuid.UUID(order_id))
    raw: bytes = redis_client.get(key)
    assert raw is not None, "the first read should have filled the cache"
    entry_stamp, _, view = raw.partition(b"\n")
    marked = OrderDetail.model_validate_json(view).model_copy(
        update={"shipping_address": MARKER})
    redis_client.set(key, entry_stamp + b"\n" + marked.model_dump_json().encode(), ex=60)


def test_a_second_read_is_served_from_the_cache(
    client: FlaskClient, cached_env: Settings, redis_client: Any
) -> None:
    me = customer()
    headers = bearer(cached_env, me)
    order = place(client, headers, product(cached_env))
    first = _get(client, headers, order["id"])
    assert first["status"] == "CREATED" and first["shipping_address"] == ""
    assert redis_client.ttl(cache.entry_key(uuid.UUID(order["id"]))) > 0  # entries expire
    _plant_marker(redis_client, order["id"])
    assert _get(client, headers, order["id"])["shipping_address"] == MARKER


def test_a_change_by_another_function_is_visible_at_once(
    client: FlaskClient, cached_env: Settings, redis_client: Any
) -> None:
    me = customer()
    headers = bearer(cached_env, me)
    order = place(client, headers, product(cached_env))
    _get(client, headers, order["id"])
    _plant_marker(redis_client, order["id"])
    # What order-saga does on stock.reserved, straight through the state machine: the API
    # is not told, and the cache holds a view of the previous version.
    advance(cached_env, order["id"], Status.AWAITING_PAYMENT)
    after = _get(client, headers, order["id"])
    assert after["status"] == "AWAITING_PAYMENT"
    assert after["shipping_address"] == ""  # rebuilt from the database, not the old entry
    assert [e["to_status"] for e in after["timeline"]] == ["CREATED", "AWAITING_PAYMENT"]
    # The rebuilt view is cached in turn, and the next change again supersedes it.
    _plant_marker(redis_client, order["id"])
    assert _get(client, headers, order["id"])["shipping_address"] == MARKER
    advance(cached_env, order["id"], Status.PAYMENT_PROCESSING, Status.PAID, Status.COMPLETED)
    done = _get(client, headers, order["id"])
    assert done["status"] == "COMPLETED" and done["status_group"] == "completed"
    assert len(done["timeline"]) == 5


def test_a_change_through_the_api_is_visible_at_once(
    client: FlaskClient, cached_env: Settings, redis_client: Any
) -> None:
    me = customer()
    headers = bearer(cached_env, me)
    order = place(client, headers, product(cached_env), payment_mode="confirm")
    _get(client, headers, order["id"])
    _plant_marker(redis_client, order["id"])
    response = client.put(f"/orders/{order['id']}", json={"status": "CANCELLED"},
                          headers=headers)
    assert response.status_code == 200
    after = _get(client, headers, order["id"])
    assert (after["status"], after["reason"]) == ("CANCELLED", "cancelled_by_customer")


def test_an_old_view_stored_late_is_never_served(
    client: FlaskClient, cached_env: Settings, redis_client: Any
) -> None:
    """A slow reader may store the view of version n after version n+1 committed (it read
    before the commit). The entry carries version n's stamp, so nobody is served it."""
    me = customer()
    headers = bearer(cached_env, me)
    order = place(client, headers, product(cached_env))
    _get(client, headers, order["id"])
    key = cache.entry_key(uuid.UUID(order["id"]))
    old_entry: bytes = redis_client.get(key)
    advance(cached_env, order["id"], Status.AWAITING_PAYMENT)
    assert _get(client, headers, order["id"])["status"] == "AWAITING_PAYMENT"
    redis_client.set(key, old_entry, ex=60)  # the late writer
    assert _get(client, headers, order["id"])["status"] == "AWAITING_PAYMENT"


def test_someone_elses_cached_order_is_still_not_found(
    client: FlaskClient, cached_env: Settings
) -> None:
    owner = bearer(cached_env, customer())
    order = place(client, owner, product(cached_env))
    _get(client, owner, order["id"])  # now cached
    response = client.get(f"/orders/{order['id']}", headers=bearer(cached_env, customer()))
    assert response.status_code == 404
    missing = client.get(f"/orders/{uuid.uuid4()}", headers=owner)
    assert missing.status_code == 404


def test_an_unreadable_entry_is_rebuilt(
    client: FlaskClient, cached_env: Settings, redis_client: Any
) -> None:
    headers = bearer(cached_env, customer())
    order = place(client, headers, product(cached_env))
    view = _get(client, headers, order["id"])
    key = cache.entry_key(uuid.UUID(order["id"]))
    entry_stamp = redis_client.get(key).partition(b"\n")[0]
    redis_client.set(key, entry_stamp + b"\nnot json", ex=60)
    assert _get(client, headers, order["id"]) == view


def test_without_redis_url_there_is_no_cache(
    saga_env: Settings, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    client = api_client()
    headers = bearer(saga_env, customer())
    order = place(client, headers, product(saga_env))
    assert _get(client, headers, order["id"])["status"] == "CREATED"
    assert redis_client.exists(cache.entry_key(uuid.UUID(order["id"]))) == 0


def test_an_unreachable_redis_costs_nothing_but_the_cache(
    saga_env: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    client = api_client()
    headers = bearer(saga_env, customer())
    order = place(client, headers, product(saga_env))
    for _ in range(3):
        assert _get(client, headers, order["id"])["status"] == "CREATED"
    advance(saga_env, order["id"], Status.AWAITING_PAYMENT)
    assert _get(client, headers, order["id"])["status"] == "AWAITING_PAYMENT"
    # One warning for the outage, not one per request.
    warnings = [r for r in caplog.records if r.name == "saga.api.cache"]
    assert len(warnings) == 1
