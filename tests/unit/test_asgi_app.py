"""common/asgi_app.py: an async HTTP function is served as itself (no Starlette router in
front), a bug outside the endpoint is a 500, and anything else gets functions-framework's
app."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient

from common.serving.asgi_app import create_app, thin_app

SOURCE = '''
from functions_framework import aio

@aio.http
async def echo(request):
    from starlette.responses import Response
    return Response(request.method + " " + request.url.path)

def plain(request):
    return "plain"
'''


async def _echo(request: Request) -> Response:
    if request.url.path == "/bug":
        raise ValueError("a bug")
    return Response(f"{request.method} {request.url.path}")


def test_every_method_and_path_reaches_the_function() -> None:
    with TestClient(thin_app(_echo)) as client:  # `with`: the lifespan is answered too
        assert client.get("/robots.txt").text == "GET /robots.txt"
        assert client.post("/a/b").text == "POST /a/b"


def test_a_bug_is_a_500() -> None:
    client = TestClient(thin_app(_echo), raise_server_exceptions=False)
    response = client.get("/bug")
    assert (response.status_code, response.text) == (500, "Internal Server Error")


def test_an_async_http_target_is_served_thin_and_others_by_functions_framework(
        tmp_path: Path) -> None:
    source = tmp_path / "main.py"
    source.write_text(SOURCE)
    thin = create_app("echo", str(source), "http")
    assert TestClient(thin).put("/x").text == "PUT /x"
    assert type(thin).__name__ == "function"
    framework = create_app("plain", str(source), "http")
    assert type(framework).__name__ == "Starlette"
    assert TestClient(framework).get("/").text == "plain"
