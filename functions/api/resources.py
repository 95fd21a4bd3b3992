"""The api process's resources: common.resources' engine, producer and outbox marker, plus
the read cache of GET /orders/{id} (functions.api.cache), made on first use when REDIS_URL
is set. Built once by main.py, closed once by the server."""

from __future__ import annotations

from common.resources import Resources
from common.settings import Settings
from functions.api.cache import OrderViewCache, connect_cache


class ApiResources(Resources):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._cache: OrderViewCache | None = None
        self._cache_made = False

    @property
    def order_cache(self) -> OrderViewCache | None:
        """The cache of order views, or None when REDIS_URL is unset."""
        if not self._cache_made:
            with self._lock:
                if not self._cache_made:
                    self._cache = connect_cache(self.settings)
                    self._cache_made = True
        return self._cache

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            cache, self._cache, self._cache_made = self._cache, None, False
        if cache is not None:
            cache.close()
        super().close(timeout)
