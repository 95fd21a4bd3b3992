"""Every URL of the console: the page and its files under /console, the API under
/console/api (an admin's token), and /console/openapi.json documenting it. Handlers are
thin: they read (queries, stuck, order_view, letters, audit) or operate (operations)."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from werkzeug import Response
from werkzeug.utils import send_file

from functions.console import audit, letters, operations, order_view, queries, stuck
from functions.console.openapi import build_document
from functions.console.operations import Who, Why
from functions.console.runtime_view import Runtime, local_functions, runtime
from functions.console.web import Call, Router, Routes
from functions.console.wiring import Problem, read

ROUTES = Routes()
STATIC = Path(__file__).resolve().parent / "static"
FILES = {"console.js": "text/javascript", "console.css": "text/css"}
# Only our own origin: no CDN, no inline script.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
API = "/console/api"
# A letter's id is a bigint: a larger number is no letter (404), not a database error.
LETTER = "<int(max=9223372036854775807):letter_id>"


class Session(BaseModel):
    operator: str
    stuck_after_s: int
    kibana: bool


def _who(call: Call) -> Who:
    return Who(operator=call.operator, trace=call.trace)


# --- the page -----------------------------------------------------------------------------

@ROUTES.route("GET", "/console", summary="The console (a web page)", public=True,
              produces="text/html")
def page(call: Call) -> Response:
    response = send_file(STATIC / "console.html", call.request.environ, mimetype="text/html",
                         max_age=0)
    response.headers["Content-Security-Policy"] = CSP
    return response


@ROUTES.route("GET", "/console/assets/<name>", summary="A file of the page", public=True,
              produces="application/octet-stream", hidden=True, errors=(404,))
def asset(call: Call) -> Response:
    name: str = call.params["name"]
    if name not in FILES:  # a fixed list: never a request path joined onto a directory
        raise Problem(404, "not found", "no such file")
    return send_file(STATIC / name, call.request.environ, mimetype=FILES[name], max_age=0)


_document: dict[str, Any] = {}
_document_lock = threading.Lock()


@ROUTES.route("GET", "/console/openapi.json", summary="This API's OpenAPI 3.1 document",
              public=True)
def openapi_document(call: Call) -> Response:
    with _document_lock:
        if not _document:
            _document.update(build_document(ROUTES.routes))
    return Response(json.dumps(_document), content_type="application/json")


# --- reading ------------------------------------------------------------------------------

@ROUTES.route("GET", f"{API}/session", summary="Who I am here, and the console's settings",
              response=Session)
def session(call: Call) -> Session:
    return Session(operator=call.operator, stuck_after_s=call.settings.stuck_after_s,
                   kibana=call.settings.kibana_url is not None)


@ROUTES.route("GET", f"{API}/overview", summary="Orders by status, the last hour, dead "
              "letters waiting", response=queries.Overview)
def overview(call: Call) -> queries.Overview:
    return read(call.resources, queries.overview)


@ROUTES.route("GET", f"{API}/runtime", summary="Lag per KafkaSource; functions up or "
              "scaled to zero (locally)", response=Runtime)
def runtime_state(call: Call) -> Runtime:
    return runtime(call.settings, call.resources.lag)


@ROUTES.route("GET", f"{API}/orders", summary="Find orders (newest first, paged by cursor)",
              query=queries.FindQuery, response=queries.OrderPage)
def find_orders(call: Call) -> queries.OrderPage:
    query = call.query(queries.FindQuery)
    return read(call.resources, lambda conn: queries.find(conn, query))


@ROUTES.route("GET", f"{API}/stuck", summary="Stuck orders, each with why",
              query=stuck.StuckQuery, response=stuck.StuckPage)
def stuck_orders(call: Call) -> stuck.StuckPage:
    older = call.query(stuck.StuckQuery).older_than_s
    older = call.settings.stuck_after_s if older is None else older
    functions = local_functions(call.settings)
    return read(call.resources, lambda conn: stuck.stuck(conn, older, functions))


@ROUTES.route("GET", f"{API}/orders/<uuid:order_id>", summary="One order: timeline, "
              "effects, traces", response=order_view.OrderDetail, errors=(404,))
def order(call: Call) -> order_view.OrderDetail:
    order_id: uuid.UUID = call.params["order_id"]
    call.order_id = str(order_id)
    functions = local_functions(call.settings)
    detail = read(call.resources, lambda conn: order_view.order_detail(
        conn, order_id, functions=functions, kibana_url=call.settings.kibana_url))
    if detail is None:
        raise Problem(404, "not found", "no such order")
    return detail


@ROUTES.route("GET", f"{API}/dead-letters", summary="Dead letters, newest first",
              query=letters.LetterQuery, response=letters.LetterPage)
def dead_letters(call: Call) -> letters.LetterPage:
    query = call.query(letters.LetterQuery)
    functions = local_functions(call.settings)
    return read(call.resources, lambda conn: letters.page(conn, query, functions))


@ROUTES.route("GET", f"{API}/dead-letters/{LETTER}", summary="One dead letter, its "
              "data masked", response=letters.Letter, errors=(404,))
def dead_letter(call: Call) -> letters.Letter:
    return _letter(call, reveal=False)


@ROUTES.route("GET", f"{API}/audit", summary="The audit of operations, newest first",
              query=audit.AuditQuery, response=audit.AuditPage)
def audit_trail(call: Call) -> audit.AuditPage:
    query = call.query(audit.AuditQuery)
    return read(call.resources, lambda conn: audit.page(conn, query))


def _letter(call: Call, *, reveal: bool) -> letters.Letter:
    letter_id: int = call.params["letter_id"]
    functions = local_functions(call.settings)
    found = read(call.resources, lambda conn: letters.letter(conn, letter_id, functions,
                                                            reveal=reveal))
    if found is None:
        raise Problem(404, "not found", "no such dead letter")
    call.order_id = found.order_id
    return found


# --- operating ----------------------------------------------------------------------------

@ROUTES.route("POST", f"{API}/orders/<uuid:order_id>/cancel", summary="Cancel an order",
              body=Why, response=operations.Result, errors=(404, 409))
def cancel_order(call: Call) -> operations.Result:
    order_id: uuid.UUID = call.params["order_id"]
    call.order_id = str(order_id)
    return operations.cancel(call.resources, _who(call), order_id, call.body(Why).why)


@ROUTES.route("POST", f"{API}/orders/<uuid:order_id>/redrive", summary="Re-drive an order's "
              "waiting dead letters", body=Why, response=operations.Result, errors=(404, 409))
def redrive_order(call: Call) -> operations.Result:
    order_id: uuid.UUID = call.params["order_id"]
    call.order_id = str(order_id)
    return operations.redrive_order(call.resources, _who(call), order_id, call.body(Why).why)


@ROUTES.route("POST", f"{API}/bulk/cancel", summary="Cancel every open order of a filter "
              "(a dry run unless confirmed)", body=operations.BulkCancelIn,
              response=operations.Bulk, errors=(409,))
def bulk_cancel(call: Call) -> operations.Bulk:
    return operations.bulk_cancel(call.resources, _who(call), call.body(operations.BulkCancelIn))


@ROUTES.route("POST", f"{API}/bulk/redrive", summary="Re-drive every waiting letter of an "
              "event type (a dry run unless confirmed)", body=operations.BulkRedriveIn,
              response=operations.Bulk, errors=(409,))
def bulk_redrive(call: Call) -> operations.Bulk:
    return operations.bulk_redrive(call.resources, _who(call),
                                   call.body(operations.BulkRedriveIn))


@ROUTES.route("POST", f"{API}/dead-letters/{LETTER}/redrive", summary="Re-drive a "
              "dead letter", body=Why, response=operations.Result, errors=(404, 409))
def redrive_letter(call: Call) -> operations.Result:
    return operations.redrive_letter(call.resources, _who(call), call.params["letter_id"],
                                     call.body(Why).why)


@ROUTES.route("POST", f"{API}/dead-letters/{LETTER}/resolve", summary="Resolve a "
              "dead letter with a note", body=Why, response=operations.Result,
              errors=(404, 409))
def resolve_letter(call: Call) -> operations.Result:
    return operations.resolve(call.resources, _who(call), call.params["letter_id"],
                              call.body(Why).why)


@ROUTES.route("POST", f"{API}/dead-letters/{LETTER}/reveal", summary="A dead letter "
              "with its data unmasked (audited)", body=Why, response=letters.Letter,
              errors=(404,))
def reveal_letter(call: Call) -> letters.Letter:
    operations.reveal(call.resources, _who(call), call.params["letter_id"], call.body(Why).why)
    return _letter(call, reveal=True)


ROUTER = Router(ROUTES.routes)
