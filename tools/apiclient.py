"""A small client of the public API, for the demo, the load generator and tests: it acts
like a customer (register, deposit, order, pay, cancel) over real HTTP. Thread-safe: one
urllib3 pool is shared by every call."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import urllib3


class ApiError(Exception):
    """A non-2xx answer; `problem` is the RFC 9457 body when there is one."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        title = problem.get("title", "") if isinstance(problem, dict) else ""
        super().__init__(f"HTTP {status}: {title} {problem.get('detail', '')}".strip())
        self.status = status
        self.problem = problem


class ApiClient:
    def __init__(
        self, base_url: str, token: str | None = None, *, timeout: float = 10.0,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.pool = pool or urllib3.PoolManager(maxsize=32, retries=False)

    def as_customer(self, token: str) -> ApiClient:
        """The same server and connection pool, another identity."""
        return ApiClient(self.base_url, token, timeout=self.timeout, pool=self.pool)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        all_headers = {"Accept": "application/json"} | (headers or {})
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        payload = None
        if body is not None:
            payload = json.dumps(body, default=str).encode()
            all_headers["Content-Type"] = "application/json"
        response = self.pool.request(
            method, self.base_url + path, body=payload, headers=all_headers,
            timeout=self.timeout,
        )
        data = json.loads(response.data) if response.data else None
        if response.status >= 300:
            raise ApiError(response.status, data if isinstance(data, dict) else {})
        return data

    # --- customer journeys ---------------------------------------------------------

    def register(self, username: str, password: str) -> None:
        self.request("POST", "/auth/register", {"username": username, "password": password})

    def login(self, username: str, password: str) -> str:
        answer = self.request("POST", "/auth/token", {"username": username, "password": password})
        token: str = answer["access_token"]
        return token

    def create_account(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/accounts")
        return result

    def deposit(self, amount: Decimal | str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", "/accounts/deposit", {"amount": str(amount)}
        )
        return result

    def account(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/accounts/me")
        return result

    def products(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.request("GET", "/products?limit=100")["items"]
        return items

    def place_order(
        self, items: list[tuple[str, int]], *, payment_mode: str = "auto",
        shipping_address: str = "", idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "items": [{"sku": sku, "quantity": qty} for sku, qty in items],
            "payment_mode": payment_mode,
            "shipping_address": shipping_address,
        }
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        result: dict[str, Any] = self.request("POST", "/orders", body, headers)
        return result

    def order(self, order_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/orders/{order_id}")
        return result

    def pay(self, order_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/orders/{order_id}/pay")
        return result

    def cancel(self, order_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PUT", f"/orders/{order_id}", {"status": "CANCELLED"}
        )
        return result

    def notifications(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.request("GET", "/notifications?limit=100")["items"]
        return items
