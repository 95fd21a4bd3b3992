"""Tokens that verified, remembered so that the next request with the same token skips the
signature check (docs/benchmarks.md, "POST /orders"). Keyed by the whole token string; an
entry holds only until the token's `exp`, at most BOUND_S after it was verified, and only
while the key that verified it is still the one in use: the same HS256 secret, the same
JWK set object from the provider (PyJWKClient fetches a new one when its own cache ends
or a new kid appears: a rotation or a revoked key ends every verdict made under the old
set). The same audience, issuer and role settings too. At most SIZE entries, least
recently used first out. Thread-safe."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P")

BOUND_S = 300.0  # also the JWKS client's lifespan (common/auth.py)
SIZE = 512


@dataclass(frozen=True)
class Verdict(Generic[P]):
    principal: P
    context: tuple[object, ...]  # the settings and the key it was verified under
    expires_at: float  # the token's exp (time.time())
    stale_at: float  # verified + BOUND_S (time.monotonic())


class VerifiedTokens(Generic[P]):
    def __init__(self, size: int = SIZE, bound_s: float = BOUND_S) -> None:
        self._size, self._bound_s = size, bound_s
        self._entries: OrderedDict[str, Verdict[P]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, context: tuple[object, ...]) -> P | None:
        """The principal of `token` if it verified under this same `context` and its
        verdict still holds."""
        with self._lock:
            verdict = self._entries.get(token)
            if verdict is None:
                return None
            if (verdict.context != context or time.time() >= verdict.expires_at
                    or time.monotonic() >= verdict.stale_at):
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return verdict.principal

    def put(self, token: str, context: tuple[object, ...], principal: P,
            expires_at: float) -> None:
        verdict = Verdict(principal, context, expires_at, time.monotonic() + self._bound_s)
        with self._lock:
            self._entries[token] = verdict
            self._entries.move_to_end(token)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
