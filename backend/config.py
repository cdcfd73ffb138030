"""Server settings: one pydantic-settings object, read from the environment and ``.env``.

Server settings use the ``AGENTFLOW_`` prefix; provider credentials keep the providers' own
names (``OPENAI_API_KEY``, ``TAVILY_BASE_URL`` ...), so existing shells and secrets work as-is.
Routes reach the settings through ``Depends(get_settings)``; ``create_app(settings)`` lets
tests build an app with overrides.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from agents.providers.pricing import ModelPrice

__all__ = ["RATE_LIMIT_PATTERN", "Settings", "config_error_message", "get_settings"]

_DATABASE_URL_FORMS = "use sqlite+aiosqlite:///path/to/file.db or postgresql://user:password@host:port/database"
_DEV_SECRET = "agentflow-development-secret-not-for-production"  # noqa: S105 - refused in prod
_PLACEHOLDER_SECRETS = frozenset({_DEV_SECRET, "changeme" * 4, "change-me" * 4, "x" * 32})
#: The Standard Webhooks secret used outside prod when none is set (``whsec_`` + base64 key bytes).
DEV_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"agentflow-development-webhook-key").decode()
_PLACEHOLDER_WEBHOOK_SECRETS = frozenset({DEV_WEBHOOK_SECRET, "whsec_changeme", "whsec_" + "x" * 32})
#: A rate limit as limits/slowapi parse it: "30/minute", "1000 per hour".
RATE_LIMIT_PATTERN = r"^\s*\d+\s*(/|\s+per\s+)\s*(\d+\s+)?(second|minute|hour|day)s?\s*$"


class Settings(BaseSettings):
    """Every knob the server reads. See the configuration table in README.md."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTFLOW_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- server -----------------------------------------------------------------------------
    env: Literal["dev", "test", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=65536, ge=1024)
    max_header_bytes: int = Field(default=16384, ge=1024)
    max_header_count: int = Field(default=100, ge=16)
    forwarded_allow_ips: str = "127.0.0.1"

    # --- rate limiting ------------------------------------------------------------------------
    rate_limit_submit: str = Field(default="30/minute", pattern=RATE_LIMIT_PATTERN)
    rate_limit_default: str = Field(default="600/minute", pattern=RATE_LIMIT_PATTERN)
    redis_url: str | None = None

    # --- authentication and quotas --------------------------------------------------------------
    auth: Literal["required", "off"] | None = Field(
        default=None, description="required | off; default: required when AGENTFLOW_ENV=prod, else off"
    )
    secret_key: SecretStr | None = Field(default=None, description="Server secret keying the API-key hashes.")
    max_queued_per_key: int = Field(default=1000, ge=1)

    # --- storage and execution ----------------------------------------------------------------
    database_url: str = "sqlite+aiosqlite:///./data/agentflow.db"
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=1000,
        description=(
            "PostgreSQL connections per pool of a process (store: this many + as many on bursts; "
            "checkpointer and job queue: this many each)"
        ),
    )
    executor: Literal["local", "queue"] | None = Field(
        default=None, description="local (in-process) or queue (procrastinate); default: queue on PostgreSQL"
    )
    worker_concurrency: int | None = Field(default=None, ge=0, le=100_000)
    stalled_after: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=100)
    max_concurrent_workflows: int = Field(default=64, ge=1, le=100_000)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    workflow_timeout: float = Field(default=600.0, gt=0)
    waiting_ttl: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="Seconds a run may wait for a human answer before it ends cancelled (approval_timeout)",
    )

    # --- result cache -------------------------------------------------------------------------
    cache_ttl: float = Field(
        default=7 * 24 * 3600.0, ge=0, description="Seconds a completed result is served from the cache; 0 = off"
    )

    # --- run events ---------------------------------------------------------------------------
    event_retention: float = Field(
        default=86400.0, gt=0, description="Seconds a run's event log is kept after the run ends"
    )
    # --- webhooks ------------------------------------------------------------------------------
    webhook_secret: SecretStr | None = Field(
        default=None, description="Standard Webhooks signing secret: whsec_ + base64 of 24-64 random bytes"
    )
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Hosts a webhook may target even on a private or loopback address"
    )
    webhook_timeout: float = Field(default=10.0, gt=0, le=60)
    webhook_retry_base: float = Field(default=5.0, gt=0, description="First retry delay; doubles per attempt")
    webhook_retry_max: float = Field(default=3600.0, gt=0)
    webhook_poll_interval: float = Field(default=1.0, gt=0, le=60)

    # --- models -------------------------------------------------------------------------------
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str = Field(
        default="https://api.openai.com/v1",
        validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url"),
    )
    model: str = "gpt-4o-mini"
    model_draft: str | None = None
    model_critique: str | None = None
    model_revise: str | None = None
    model_plan: str | None = None
    model_synthesize: str | None = None
    model_research: str | None = None
    model_write: str | None = None
    structured_output_method: Literal["json_schema", "function_calling"] = "json_schema"
    llm_timeout: float = Field(default=60.0, gt=0)
    llm_connect_timeout: float = Field(default=5.0, gt=0)
    llm_max_retries: int = Field(default=4, ge=0, le=10)
    llm_call_deadline: float = Field(default=180.0, gt=0)
    retry_base_delay: float = Field(default=0.5, gt=0)
    retry_max_delay: float = Field(default=30.0, gt=0)
    llm_temperature: float = Field(default=0.2, ge=0, le=2)
    openai_max_concurrency: int = Field(default=16, ge=1)
    openai_rpm: int | None = Field(default=None, ge=1)
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description='JSON {"model": {"input": 0.15, "cached_input": 0.075, "output": 0.6}} in USD per 1M tokens',
    )

    # --- search providers ---------------------------------------------------------------------
    tavily_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TAVILY_API_KEY", "tavily_api_key")
    )
    tavily_base_url: str = Field(
        default="https://api.tavily.com",
        validation_alias=AliasChoices("TAVILY_BASE_URL", "tavily_base_url"),
    )
    tavily_max_concurrency: int = Field(default=4, ge=1)
    tavily_rpm: int | None = Field(default=None, ge=1)
    search_timeout: float = Field(default=20.0, gt=0)
    arxiv_api_url: str = Field(
        default="https://export.arxiv.org/api/query",
        validation_alias=AliasChoices("ARXIV_API_URL", "arxiv_api_url"),
    )
    arxiv_min_interval: float = Field(default=3.0, ge=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            # As URLs spell hosts, minus IPv6 brackets: "127.0.0.1", "hooks.internal", "::1".
            return [host.strip().strip("[]").lower() for host in value.split(",") if host.strip()]
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_format(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        raw = value.get_secret_value().strip().removeprefix("whsec_")
        try:
            key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be whsec_ followed by base64 (the Standard Webhooks secret format)") from None
        if len(key) < 16:
            raise ValueError("must encode at least 16 random bytes")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(f"not a database URL; {_DATABASE_URL_FORMS}") from None
        if url.get_backend_name() == "postgresql" or url.drivername == "sqlite+aiosqlite":
            return value
        raise ValueError(f"unsupported database driver {url.drivername!r}; {_DATABASE_URL_FORMS}")

    @field_validator("openai_api_key", "tavily_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env == "prod" and "*" in self.cors_origins:
            raise ValueError("AGENTFLOW_CORS_ORIGINS may not be '*' when AGENTFLOW_ENV=prod")
        if self.env == "prod":
            secret = self.secret_key.get_secret_value() if self.secret_key else ""
            if len(secret) < 32 or secret in _PLACEHOLDER_SECRETS:
                raise ValueError("AGENTFLOW_SECRET_KEY must be set to 32+ random characters when AGENTFLOW_ENV=prod")
            webhook = self.webhook_secret.get_secret_value() if self.webhook_secret else None
            if webhook in _PLACEHOLDER_WEBHOOK_SECRETS:
                raise ValueError("AGENTFLOW_WEBHOOK_SECRET must be a random secret when AGENTFLOW_ENV=prod")
        if self.executor == "queue" and not self.is_postgres:
            raise ValueError("AGENTFLOW_EXECUTOR=queue needs a PostgreSQL AGENTFLOW_DATABASE_URL")
        return self

    def model_for(self, role: str, default: str | None = None) -> str:
        """An agent role's model: ``AGENTFLOW_MODEL_<ROLE>``, else the workflow's default, else ``AGENTFLOW_MODEL``."""
        specific: str | None = getattr(self, f"model_{role}", None)
        return specific or default or self.model

    @property
    def auth_required(self) -> bool:
        """Whether every protected route needs an API key (``AGENTFLOW_AUTH``, by default in prod)."""
        return (self.auth or ("required" if self.env == "prod" else "off")) == "required"

    @property
    def key_secret(self) -> bytes:
        """The key-hash secret; outside prod a fixed development value stands in when unset."""
        return (self.secret_key.get_secret_value() if self.secret_key else _DEV_SECRET).encode()

    @property
    def signing_secret(self) -> str | None:
        """The webhook signing secret; outside prod a fixed development value stands in when unset.

        None (prod without ``AGENTFLOW_WEBHOOK_SECRET``): webhooks are refused at submit.
        """
        if self.webhook_secret is not None:
            return self.webhook_secret.get_secret_value()
        return None if self.env == "prod" else DEV_WEBHOOK_SECRET

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgres")

    @property
    def resolved_executor(self) -> Literal["local", "queue"]:
        """The executor in use: as configured, else ``queue`` on PostgreSQL and ``local`` on SQLite."""
        if self.executor is not None:
            return self.executor
        return "queue" if self.is_postgres else "local"


def _variable_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str):
            return first
    return f"AGENTFLOW_{field.upper()}"


def config_error_message(error: ValidationError) -> str:
    """One line naming every bad variable, for a start-up failure."""
    parts = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        name = _variable_name(field) if field else "configuration"
        parts.append(f"{name}: {item['msg']}")
    return "invalid configuration: " + "; ".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (overridden per app in tests via ``create_app(settings)``)."""
    return Settings()
