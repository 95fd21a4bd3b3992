"""At most two argon2 hashes at once in the api (functions/api/auth.py: each holds 64 MiB)."""

from __future__ import annotations

import threading

import pytest

from functions.api import auth


class _Gate:
    """A hasher that blocks until released and records how many ran at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.two_in = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        with self._lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
            if self.inside == 2:
                self.two_in.set()
        assert self.release.wait(10)
        with self._lock:
            self.inside -= 1
        return "hashed:" + password


def test_no_more_than_two_hashes_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = _Gate()
    monkeypatch.setattr(auth, "_hasher", gate)
    threads = [threading.Thread(target=auth.hash_password, args=(f"pw{i}",)) for i in range(5)]
    for thread in threads:
        thread.start()
    assert gate.two_in.wait(10)
    # The other three wait on the semaphore, not in the hasher.
    assert not auth._hashing.acquire(blocking=False)
    gate.release.set()
    for thread in threads:
        thread.join(10)
    assert gate.most == 2
    assert auth._hashing.acquire(blocking=False)  # every slot came back
    auth._hashing.release()
