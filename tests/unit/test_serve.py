"""common/serving/serve.py reads a function's command line and environment as functions-framework's
CLI does, and serves the CloudEvents functions (FUNCTION_USE_ASGI) in its own process."""

from __future__ import annotations

import pytest

from common.serving.serve import one_process, parse

EVENT_FUNCTION = {"FUNCTION_TARGET": "inventory", "FUNCTION_SOURCE": "functions/inventory/main.py",
                  "FUNCTION_SIGNATURE_TYPE": "http", "FUNCTION_USE_ASGI": "true",
                  "PORT": "9000"}


def test_the_environment_a_knative_service_sets() -> None:
    args = parse([], EVENT_FUNCTION)
    assert (args.target, args.source, args.signature_type, args.port, args.asgi) == (
        "inventory", "functions/inventory/main.py", "http", 9000, True)
    assert args.host == "0.0.0.0"


def test_arguments_win_over_the_environment() -> None:
    args = parse(["--target", "echo", "--port", "8123", "--host", "127.0.0.1",
                  "--signature-type", "cloudevent"], EVENT_FUNCTION)
    assert (args.target, args.port, args.host, args.signature_type) == (
        "echo", 8123, "127.0.0.1", "cloudevent")


@pytest.mark.parametrize(("flag", "asgi"), [("true", True), ("1", True), ("True", True),
                                            ("0", False), ("", False)])
def test_the_asgi_flag_is_read_as_click_reads_it(flag: str, asgi: bool) -> None:
    env = {"FUNCTION_TARGET": "api", "FUNCTION_USE_ASGI": flag}
    assert one_process([], env) is asgi
    assert one_process(["--asgi"], {"FUNCTION_TARGET": "api"})


def test_a_target_is_required() -> None:
    with pytest.raises(SystemExit):
        parse([], {})
