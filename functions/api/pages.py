"""The pages the function serves itself: Swagger UI at /docs (from swagger-ui-bundle's
packaged static files, no CDN) and the customer's cabinet at /cabinet. Files are looked up
in fixed allow-lists, never by joining a request path onto a directory."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from werkzeug import Response
from werkzeug.utils import send_file

from common.problems import Problem
from functions.api.errors import not_found
from functions.api.route_specs import Call, RouteGroup

ROUTES = RouteGroup("pages")

STATIC = Path(__file__).resolve().parent / "static"
# Our own files under /assets/<name> (Flask itself claims /static/).
OWN_FILES = {
    "docs-init.js": "text/javascript",
    "cabinet.js": "text/javascript",
    "cabinet.css": "text/css",
}
# The part of the Swagger UI distribution the page uses, under /docs/<name>.
SWAGGER_FILES = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
# Only our own origin; Swagger UI styles elements inline and uses data: images.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
ASSET_MAX_AGE_S = 3600


@lru_cache(maxsize=1)
def swagger_dir() -> Path:
    # Imported on first use: nothing is loaded at import time, and a missing package only
    # takes /docs down, not the API.
    try:
        import swagger_ui_bundle
    except ImportError:
        raise Problem(503, "documentation unavailable",
                         "Swagger UI is not installed (swagger-ui-bundle)") from None
    return Path(str(swagger_ui_bundle.swagger_ui_path))


def _page(call: Call, name: str) -> Response:
    response = send_file(STATIC / name, call.request.environ, mimetype="text/html",
                         max_age=0)
    response.headers["Content-Security-Policy"] = CSP
    return response


def _asset(call: Call, path: Path, mimetype: str) -> Response:
    return send_file(path, call.request.environ, mimetype=mimetype, max_age=ASSET_MAX_AGE_S)


@ROUTES.route("GET", "/docs", summary="Swagger UI for this API", auth="none",
              produces="text/html")
def swagger_ui(call: Call) -> Response:
    return _page(call, "docs.html")


@ROUTES.route("GET", "/docs/<name>", summary="Swagger UI static file", auth="none",
              produces="application/octet-stream", hidden=True, errors=(404,))
def swagger_asset(call: Call) -> Response:
    name: str = call.params["name"]
    if name not in SWAGGER_FILES:
        raise not_found("file")
    return _asset(call, swagger_dir() / name, SWAGGER_FILES[name])


@ROUTES.route("GET", "/assets/<name>", summary="Static file of the pages", auth="none",
              produces="application/octet-stream", hidden=True, errors=(404,))
def static_file(call: Call) -> Response:
    name: str = call.params["name"]
    if name not in OWN_FILES:
        raise not_found("file")
    return _asset(call, STATIC / name, OWN_FILES[name])


@ROUTES.route("GET", "/cabinet", summary="My orders and notifications (a web page)",
              auth="none", produces="text/html")
def cabinet(call: Call) -> Response:
    return _page(call, "cabinet.html")
