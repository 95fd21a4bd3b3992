"""What every bench under valgrind's callgrind shares: CallgrindError, the check that valgrind
is installed, a callgrind output file's total instructions (Ir), and the counters of a
running process under callgrind (`callgrind_control -z` zeroes them, `-d` dumps them)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import psutil

INSTALL_HINT = "install valgrind (Debian/Ubuntu: apt-get install valgrind)"
# A process's dumps: `--callgrind-out-file=DIR/cg.%p.out`, each dump then `cg.PID.out.N`.
OUT_FILE = "cg.%p.out"


class CallgrindError(RuntimeError):
    """valgrind is missing, a process under it did not do what was asked, or its output had
    no total."""


def require_valgrind() -> str:
    """The valgrind executable, or CallgrindError naming how to install it."""
    found = shutil.which("valgrind")
    if found is None or shutil.which("callgrind_control") is None:
        raise CallgrindError(f"valgrind is not on PATH; {INSTALL_HINT}")
    return found


def parse_total_ir(text: str) -> int:
    """The total Ir of one callgrind output file's text."""
    for line in text.splitlines():
        if line.startswith(("summary:", "totals:")):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1])
            break
    raise CallgrindError("no 'summary:' or 'totals:' line with an instruction count")


def read_total_ir(path: Path) -> int:
    """The total Ir of the callgrind output file at `path`."""
    try:
        return parse_total_ir(path.read_text(encoding="utf-8", errors="replace"))
    except CallgrindError as exc:
        raise CallgrindError(f"{exc} in {path}") from None


class Counters:
    """The callgrind counters of a process valgrind started with its dumps in `out_dir`
    (OUT_FILE). callgrind_control cannot reach a process it forked (a gunicorn master's
    worker), so such a process is not counted."""

    def __init__(self, pid: int, out_dir: Path) -> None:
        self.pid, self.out_dir = pid, out_dir

    def countable(self) -> bool:
        return not psutil.Process(self.pid).children(recursive=True)

    def zero(self) -> None:
        _control("-z", self.pid)

    def dump(self, keep: Path | None = None) -> int:
        """Dump the counters; the instructions since the last zero. `keep`: a copy of the
        dump there (for callgrind_annotate)."""
        pattern = f"cg.{self.pid}.out.*"  # as OUT_FILE names them
        before = set(self.out_dir.glob(pattern))
        _control("-d", self.pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = set(self.out_dir.glob(pattern)) - before
            if new:
                dump = max(new, key=lambda p: p.stat().st_mtime)
                if keep is not None:
                    keep.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(dump, keep)
                return read_total_ir(dump)
            time.sleep(0.05)  # valgrind writes the dump as callgrind_control returns
        raise CallgrindError(f"no dump from process {self.pid} in {self.out_dir}")


def _control(flag: str, pid: int) -> None:
    done = subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True,
                          text=True, timeout=600, check=False)
    if done.returncode != 0 or "not detected" in done.stdout + done.stderr:  # it exits 0
        raise CallgrindError(f"callgrind_control {flag} {pid}: {done.stdout}{done.stderr}")
