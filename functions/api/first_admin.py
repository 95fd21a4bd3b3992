"""The api's first admin, for a cluster without an identity provider: a user of the api's
own sign-in (POST /auth/token) with the admin role, created only while no admin exists.

An existing user is never changed: not promoted (whoever registered that name first, with
a password of their choosing, would become an admin), and not given a new password (a
changed Secret is reported, and the admin keeps the password it has).
"""

from __future__ import annotations

import enum

from pydantic import ValidationError

from common.auth import ADMIN_ROLE, CUSTOMER_ROLE
from common.pg import Tx
from functions.api import sql
from functions.api.auth import RegisterIn, create_user, hash_password, verify_password
from functions.api.errors import validation_summary


class AdminRefused(RuntimeError):
    """The admin cannot be made as asked; the message names the fix."""


class AdminOutcome(enum.Enum):
    CREATED = "created"
    UNCHANGED = "unchanged"  # this admin exists, with this password
    PASSWORD_DIFFERS = "password_differs"  # noqa: S105 (exists, with another password)
    OTHER_ADMIN = "other_admin"  # another user is the admin; this one was not made


def credentials(username: str, password: str) -> RegisterIn:
    """The same rules as POST /auth/register; the error never quotes the password."""
    try:
        return RegisterIn(username=username, password=password)
    except ValidationError as exc:
        raise AdminRefused("the bootstrap admin's credentials are invalid: "
                           f"{validation_summary(exc)}") from None


def ensure_admin(tx: Tx, wanted: RegisterIn) -> tuple[AdminOutcome, list[str]]:
    """Create `wanted` as an admin unless an admin exists; the outcome and the admins."""
    admins: dict[str, str] = dict(tx.all(sql.USERS_WITH_ROLE, {"role": ADMIN_ROLE}))
    if wanted.username in admins:
        same = verify_password(admins[wanted.username], wanted.password)
        return (AdminOutcome.UNCHANGED if same else AdminOutcome.PASSWORD_DIFFERS), list(admins)
    if admins:
        return AdminOutcome.OTHER_ADMIN, list(admins)
    if not create_user(tx, wanted.username, hash_password(wanted.password),
                       [CUSTOMER_ROLE, ADMIN_ROLE]):
        raise AdminRefused(
            f"the user {wanted.username!r} exists and is not an admin; it is not promoted "
            "(anyone may have registered that name): set SAGA_BOOTSTRAP_ADMIN_USERNAME to a "
            "name nobody uses")
    return AdminOutcome.CREATED, [wanted.username]
