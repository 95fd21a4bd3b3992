"""Where an identity provider puts a user's roles, and which of them makes an admin of this
API (common/auth.py: claim_values, identity_provider_roles)."""

from __future__ import annotations

from typing import Any

import pytest

from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, AuthError, claim_values, identity_provider_roles

KEYCLOAK = {"sub": "f3a1", "realm_access": {"roles": ["offline_access", "shop-admin"]},
            "resource_access": {"saga-api": {"roles": ["orders-reader"]}}}
AUTH0 = {"sub": "auth0|42", "https://shop.example/roles": ["Admin"],
         "scope": "openid profile orders:write"}
OKTA = {"sub": "00u1", "groups": ["Everyone", "Shop Admins"]}


@pytest.mark.parametrize(("claims", "path", "expected"), [
    (KEYCLOAK, "realm_access.roles", ["offline_access", "shop-admin"]),
    (KEYCLOAK, "resource_access.saga-api.roles", ["orders-reader"]),
    (AUTH0, "https://shop.example/roles", ["Admin"]),  # a dotted name, matched whole
    (AUTH0, "scope", ["openid", "profile", "orders:write"]),  # space-separated string
    (OKTA, "groups", ["Everyone", "Shop Admins"]),
    (OKTA, "realm_access.roles", []),  # absent: no roles
    (KEYCLOAK, "realm_access.roles.more", []),  # a list is not an object to descend into
    ({"roles": ["admin"]}, "roles", ["admin"]),
])
def test_claim_values(claims: dict[str, Any], path: str, expected: list[str]) -> None:
    assert claim_values(claims, path) == expected


@pytest.mark.parametrize("value", [{"roles": ["admin"]}, ["admin", 7], 42, True])
def test_a_claim_of_another_shape_is_refused(value: object) -> None:
    with pytest.raises(AuthError, match="'realm_access' is not a list of roles"):
        claim_values({"realm_access": value}, "realm_access")


def test_only_the_configured_value_makes_an_admin() -> None:
    admin = frozenset({CUSTOMER_ROLE, ADMIN_ROLE})
    customer = frozenset({CUSTOMER_ROLE})
    assert identity_provider_roles(KEYCLOAK, "realm_access.roles", "shop-admin") == admin
    assert identity_provider_roles(OKTA, "groups", "Shop Admins") == admin
    # The provider's other roles, a role in another claim, or a case variant: a customer.
    assert identity_provider_roles(KEYCLOAK, "realm_access.roles", "offline") == customer
    assert identity_provider_roles(KEYCLOAK, "resource_access.saga-api.roles",
                                   "shop-admin") == customer
    assert identity_provider_roles(AUTH0, "https://shop.example/roles", "admin") == customer
    assert identity_provider_roles({"sub": "x"}, "roles", "admin") == customer
