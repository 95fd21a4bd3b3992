"""The rules of an order id as a person types it (tools/ops/orders.py): the whole UUID or a
prefix of at least 6 hex digits; the database lookup is tested in
tests/integration/test_cli_order_ids.py."""

from __future__ import annotations

import uuid

import pytest

from common.order_ids import prefix_range
from tools.ops.context import OpsError
from tools.ops.orders import parse_order_id

ORDER = uuid.UUID("6fc43fbf-0618-45ef-b594-4c9321d9442c")


@pytest.mark.parametrize("text", [str(ORDER), str(ORDER).upper(), ORDER.hex, f" {ORDER} "])
def test_a_whole_uuid_is_taken_as_is(text: str) -> None:
    assert parse_order_id(text) == ORDER


@pytest.mark.parametrize(("text", "prefix"), [
    ("6fc43fbf", "6fc43fbf"), ("6FC43F", "6fc43f"), ("6fc43fbf-06", "6fc43fbf06")])
def test_six_or_more_hex_digits_are_a_prefix(text: str, prefix: str) -> None:
    assert parse_order_id(text) == prefix


@pytest.mark.parametrize("text", ["6fc43", "6f", "-----6fc4"])
def test_fewer_than_six_is_bad_usage(text: str) -> None:
    with pytest.raises(OpsError, match=r"too short .* at least 6 characters"):
        parse_order_id(text)


@pytest.mark.parametrize("text", ["", "not-an-order", "6fc43fbz", ORDER.hex + "0"])
def test_what_is_no_id_says_so(text: str) -> None:
    with pytest.raises(OpsError, match="is not an order id"):
        parse_order_id(text)


def test_the_range_holds_exactly_the_ids_with_the_prefix() -> None:
    low, high = prefix_range("6fc43f")
    assert str(low) == "6fc43f00-0000-0000-0000-000000000000"
    assert str(high) == "6fc43fff-ffff-ffff-ffff-ffffffffffff"
    assert low.bytes <= ORDER.bytes <= high.bytes  # PostgreSQL compares uuids as bytes
    outside = uuid.UUID("6fc440" + "0" * 26)
    assert not low.bytes <= outside.bytes <= high.bytes
