"""The one settings class of what a deployed function reads (tools/settings.py extends it
for what only the tools read). Standard names (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS) are
read as they are; everything else is prefixed with SAGA_ (e.g. SAGA_JWT_SECRET)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import AliasChoices, AwareDatetime, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.settings_errors import settings_error

AnySettings = TypeVar("AnySettings", bound=BaseSettings)
DAY_S = 24 * 3600


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAGA_", extra="ignore", frozen=True)

    # --- infrastructure -------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "SAGA_DATABASE_URL"),
        description="PostgreSQL URL (`./taskw up` starts an embedded server when unset).",
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "SAGA_KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers (`./taskw up` starts a broker when unset).",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "SAGA_REDIS_URL"),
        description="Redis for the API's read cache of GET /orders/{id}; unset: no cache.",
    )
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_one_record_per_batch: bool = Field(
        default=False,
        description="Produce one record per batch, for a broker whose high watermark counts "
        "batches (Tansu: docs/architecture.md, 'Two brokers'); the local runtime sets it "
        "for the processes it starts on Tansu.",
    )

    # --- identity ------------------------------------------------------------------------
    function_name: str = Field(
        default="saga",
        validation_alias=AliasChoices("SAGA_FUNCTION_NAME", "K_SERVICE"),
        description="The function this process serves (Knative sets K_SERVICE).",
    )
    log_level: str = "INFO"
    threads: int = Field(
        default=4, ge=1, validation_alias=AliasChoices("THREADS", "SAGA_THREADS"),
        description="Events a function handles at once (gunicorn's THREADS; the manifests "
                    "keep it equal to containerConcurrency and the database pool).",
    )

    # --- database ------------------------------------------------------------------------
    db_pool_size: int = Field(default=8, ge=1)
    db_pool_max_overflow: int = Field(default=2, ge=0)
    db_statement_timeout_ms: int = Field(default=10_000, ge=0)
    db_prepared_statements: bool = Field(
        default=True,
        description="Run the functions' statements prepared (parsed and planned once per "
        "connection). Turn off behind a PgBouncer in transaction mode older than 1.21 or "
        "without max_prepared_statements (docs/deploy.md, section 8).",
    )

    # --- auth ----------------------------------------------------------------------------
    jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 secret (`./taskw up` makes one for its processes)."
    )
    jwt_issuer: str = "saga-local"
    jwt_audience: str = "saga-api"
    jwks_url: str | None = Field(default=None, description="RS256 keys of an identity provider.")
    jwks_roles_claim: str = Field(
        default="roles", min_length=1,
        description="Where the identity provider's tokens list a user's roles or groups: a "
        "claim name or a dotted path into nested claims (Keycloak: realm_access.roles; Okta: "
        "groups). A top-level claim named with dots (Auth0's namespaced claims, "
        "https://shop.example/roles) is matched whole first.",
    )
    jwks_admin_role: str = Field(
        default="admin", min_length=1,
        description="The value in that claim that makes the user an admin of this API.",
    )
    jwt_ttl_s: int = Field(default=3600, ge=60)

    # --- bootstrap (the Job's first run on a cluster: functions/api/bootstrap.py) ---------
    bootstrap_admin_username: str | None = Field(
        default=None, description="The api's first admin, created when no admin exists yet.")
    bootstrap_admin_password: SecretStr | None = Field(
        default=None, description="Its password; never applied to an existing user.")

    # --- saga ----------------------------------------------------------------------------
    payment_window_s: int = Field(default=300, ge=1)
    stuck_after_s: int = Field(default=600, ge=1)
    outbox_publish_timeout_s: float = Field(default=5.0, gt=0)
    outbox_relay_age_s: float = Field(default=3.0, ge=0)

    # --- the console ---------------------------------------------------------------------
    kibana_url: str | None = Field(
        default=None, pattern=r"^https?://",
        description="Kibana's base URL: the console links an order to its log lines in "
        "Discover; unset, it shows the query to paste.")
    runtime_state_file: Path | None = Field(
        default=None,
        description="The local runtime's runtime-state.json, where the console reads which "
        "functions run or scaled to zero; `./taskw up` sets it for the functions it starts. "
        "Unset (a cluster): the console points to `kn service list`.")

    # --- retention (functions/retention; docs/operations.md, "Retention") ---------------
    # The inbox windows are held to the topics' retention by tests/contract/
    # test_retention_rule.py: raising a topic's retention.ms without them fails CI.
    retention_inbox_s: int = Field(
        default=9 * DAY_S, ge=1,
        description="Inbox rows of the event topics' consumers are kept this long: at least "
        "the longest time a record of those topics may still be re-delivered.")
    retention_dead_letter_inbox_s: int = Field(
        default=16 * DAY_S, ge=1,
        description="Inbox rows of the dlq function (it reads the dead-letter topic).")
    retention_outbox_s: int = Field(
        default=3 * DAY_S, ge=1,
        description="Published outbox rows are kept this long (saga trace, the console).")
    retention_idempotency_s: int = Field(
        default=DAY_S, ge=1,
        description="An Idempotency-Key of POST /orders is honoured this long.")
    retention_dead_letters_s: int = Field(
        default=30 * DAY_S, ge=1,
        description="Resolved or re-driven dead letters are kept this long after their "
        "last re-drive; waiting ones are never deleted.")
    retention_dry_run: bool = Field(
        default=False, description="The retention sweep counts what it would delete instead.")
    broker_enforces_retention: bool = Field(
        default=True,
        description="Whether the broker deletes records past their topic's retention.ms, as "
        "Apache Kafka does. Tansu keeps every record for its life (the local runtime sets "
        "false for it): then inbox rows go only when older than SAGA_BROKER_STARTED_AT.")
    broker_started_at: AwareDatetime | None = Field(
        default=None,
        description="When the local runtime started the Tansu broker it runs (it sets this): "
        "Tansu keeps every record for its life, so only inbox rows older than this may go.")

    def one_record_per_batch(self) -> bool:
        """Whether producers write one record per batch (tools/settings.py adds Tansu)."""
        return self.kafka_one_record_per_batch

    def enforces_retention(self) -> bool:
        """Whether the broker drops records past retention (tools/settings.py: not Tansu)."""
        return self.broker_enforces_retention

    def postgres_url(self) -> str:
        """The database URL in the form libpq wants (psycopg's connections and pool)."""
        if self.database_url is None:
            raise RuntimeError(
                "DATABASE_URL is not set: run through `./taskw up` (which starts an embedded "
                "PostgreSQL) or export DATABASE_URL=postgresql://user@host:5432/db"
            )
        return to_postgres_url(self.database_url.get_secret_value())

    def sqlalchemy_url(self) -> str:
        """The database URL in the form SQLAlchemy wants (psycopg 3 driver)."""
        return to_sqlalchemy_url(self.postgres_url())


def to_postgres_url(url: str) -> str:
    return "postgresql://" + to_sqlalchemy_url(url)[len("postgresql+psycopg://"):]


def to_sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must start with postgresql:// (got another scheme)")


def get_settings() -> Settings:
    """The settings in the environment now (a process reads them once, into its
    common.resources). A refused value raises SettingsError (common/settings_errors.py):
    one line."""
    return read_settings(Settings)


def read_settings(cls: type[AnySettings]) -> AnySettings:
    """`cls()` from the environment; SettingsError (one line naming the variable, the value
    unless secret, and what is allowed) instead of pydantic's ValidationError."""
    try:
        return cls()
    except ValidationError as exc:
        raise settings_error(exc, cls) from None
