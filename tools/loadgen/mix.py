"""The outcome scenarios a load mixes, what each customer does, and what each must end in:
happy (auto payment, in stock, funded: COMPLETED); confirm (the customer pays with POST
/orders/{id}/pay when asked: COMPLETED); out_of_stock (a SKU with no stock) and
insufficient_funds (one dearer than any wallet): CANCELLED for that reason; timeout
(confirm mode, never paid: CANCELLED payment_timeout, after SAGA_PAYMENT_WINDOW_S and the
next sweep); cancel (the customer cancels within 0.2 s, racing the reservation: CANCELLED
cancelled_by_customer); shipping_failed (an UNDELIVERABLE address: CANCELLED
shipping_failed)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Scenario = Literal["happy", "confirm", "out_of_stock", "insufficient_funds", "timeout",
                   "cancel", "shipping_failed"]
SCENARIOS: tuple[Scenario, ...] = ("happy", "confirm", "out_of_stock", "insufficient_funds",
                                   "timeout", "cancel", "shipping_failed")

# The full outcome mix, weighted like a shop's day: mostly sales.
FULL_MIX = ("happy=60,confirm=6,out_of_stock=8,insufficient_funds=8,timeout=4,cancel=8,"
            "shipping_failed=6")


@dataclass(frozen=True)
class Expected:
    status: Literal["COMPLETED", "CANCELLED"]
    reason: str | None
    payment_mode: Literal["auto", "confirm"]


EXPECTED: dict[Scenario, Expected] = {
    "happy": Expected("COMPLETED", None, "auto"),
    "confirm": Expected("COMPLETED", None, "confirm"),
    "out_of_stock": Expected("CANCELLED", "out_of_stock", "auto"),
    "insufficient_funds": Expected("CANCELLED", "insufficient_funds", "auto"),
    "timeout": Expected("CANCELLED", "payment_timeout", "confirm"),
    "cancel": Expected("CANCELLED", "cancelled_by_customer", "confirm"),
    "shipping_failed": Expected("CANCELLED", "shipping_failed", "auto"),
}


class MixError(ValueError):
    pass


def parse_mix(text: str) -> dict[Scenario, float]:
    """"happy=70,cancel=30" -> weights; "full" is FULL_MIX. Weights need not add up to 100."""
    if text.strip() == "full":
        text = FULL_MIX
    weights: dict[Scenario, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in SCENARIOS:
            raise MixError(f"bad mix entry {part!r}: use NAME=WEIGHT with NAME one of "
                           + ", ".join(SCENARIOS))
        try:
            weight = float(value)
        except ValueError:
            raise MixError(f"bad weight in {part!r}") from None
        if weight < 0:
            raise MixError(f"negative weight in {part!r}")
        weights[name.strip()] = weight  # type: ignore[index]
    if not weights or sum(weights.values()) <= 0:
        raise MixError("the mix has no positive weight")
    return weights


def assign(orders: int, weights: dict[Scenario, float], seed: int = 7) -> list[Scenario]:
    """`orders` scenarios in exact proportion (largest remainder), shuffled with `seed`, so
    a run of 300 with cancel=8 has exactly 24 cancels, not 24 on average."""
    total = sum(weights.values())
    shares = {name: orders * w / total for name, w in weights.items() if w > 0}
    counts = {name: int(share) for name, share in shares.items()}
    by_remainder = sorted(shares, key=lambda n: shares[n] - counts[n], reverse=True)
    for name in by_remainder[: orders - sum(counts.values())]:
        counts[name] += 1
    plan = [name for name, n in counts.items() for _ in range(n)]
    random.Random(seed).shuffle(plan)
    return plan
