"""Names the local runtime's processes in `ps` and `top`: `saga: up`, `saga: zygote asgi`,
`saga: inventory` (the api's gunicorn: `saga: api (master)`, `saga: api (worker)`).

Local only, like the rest of tools/: in a pod the process's name tells nothing the pod's
name does not, so setproctitle is in the `local` extra and a missing one changes nothing.
"""

from __future__ import annotations

PREFIX = "saga: "


def set_title(name: str) -> None:
    """This process shows as `saga: <name>` (argv and, cut to 15 bytes, comm)."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(PREFIX + name)


def name_gunicorn(function: str) -> None:
    """gunicorn names its master and workers itself, through setproctitle, after the title
    set here; make those names `saga: <function> (master|worker)` too."""
    try:
        from gunicorn import util
    except ImportError:
        return

    def titled(title: str) -> None:  # gunicorn's titles: "master [app]", "worker [app]"
        set_title(f"{function} ({title.split(' ', 1)[0]})")

    util._setproctitle = titled
