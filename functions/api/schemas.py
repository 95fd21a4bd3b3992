"""Types shared by the resource modules: money as decimal strings, pagination."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from functions.api.errors import field_problem

_DECIMAL = re.compile(r"^\d{1,10}(\.\d{1,2})?$")


def _decimal_string(value: Any) -> Any:
    # JSON numbers are binary floats in most clients: money must arrive as text, exactly.
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "12.50", not a JSON number')
    if not _DECIMAL.match(value):
        raise ValueError('must be a decimal string with at most 2 decimals, such as "12.50"')
    return Decimal(value)


MoneyIn = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    WithJsonSchema({
        "type": "string", "pattern": _DECIMAL.pattern, "examples": ["12.50"],
        "description": "A decimal string with at most 2 decimals (never a JSON number).",
    }),
]

MoneyOut = Annotated[
    Decimal,
    PlainSerializer(lambda d: f"{d:.2f}", return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{2}$", "examples": ["12.50"]}),
]


class RequestModel(BaseModel):
    """Bodies refuse unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class PageQuery(BaseModel):
    """?limit=&cursor=: keyset pagination. The cursor is opaque: pass back next_cursor."""

    # Unknown query parameters (cache busters) are ignored, unlike unknown body fields.
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=20, ge=1, le=100, description="Page size, 1 to 100.")
    cursor: str | None = Field(
        default=None, max_length=200,
        description="next_cursor of the previous page; omit for the first page.",
    )


NEXT_CURSOR_DESCRIPTION = "Pass as ?cursor= for the next page; null on the last page."


def encode_cursor(*values: str) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[str]:
    """The values encode_cursor packed; a 422 naming `cursor` for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        values = None
    if not (isinstance(values, list) and len(values) == arity
            and all(isinstance(v, str) for v in values)):
        raise field_problem("cursor", "not a cursor this API returned")
    return values


def time_id_cursor(at: datetime, row_id: UUID) -> str:
    """The cursor of a newest-first page keyed on (created_at, id)."""
    return encode_cursor(at.isoformat(), str(row_id))


def decode_time_id_cursor(cursor: str) -> tuple[datetime, UUID]:
    at, row_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), UUID(row_id)
    except ValueError:
        raise field_problem("cursor", "not a cursor this API returned") from None
