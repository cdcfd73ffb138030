"""Server settings: one pydantic-settings object, read from the environment and ``.env``.

Server settings use the ``AGENTFLOW_`` prefix; provider credentials keep the providers' own
names (``OPENAI_API_KEY``, ``TAVILY_BASE_URL`` ...), so existing shells and secrets work as-is.
Routes reach the settings through ``Depends(get_settings)``; ``create_app(settings)`` lets
tests build an app with overrides.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "config_error_message", "get_settings"]

_RATE = r"^\s*\d+\s*(/|\s+per\s+)\s*(\d+\s+)?(second|minute|hour|day)s?\s*$"


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
    forwarded_allow_ips: str = "127.0.0.1"

    # --- rate limiting ------------------------------------------------------------------------
    rate_limit_submit: str = Field(default="30/minute", pattern=_RATE)
    rate_limit_default: str = Field(default="600/minute", pattern=_RATE)
    redis_url: str | None = None

    # --- storage and execution ----------------------------------------------------------------
    database_url: str = "sqlite+aiosqlite:///./data/agentflow.db"
    executor: Literal["local", "queue"] | None = Field(
        default=None, description="local (in-process) or queue (procrastinate); default: queue on PostgreSQL"
    )
    worker_concurrency: int | None = Field(default=None, ge=0, le=100_000)
    stalled_after: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=100)
    max_concurrent_workflows: int = Field(default=64, ge=1, le=100_000)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    workflow_timeout: float = Field(default=600.0, gt=0)

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

    @field_validator("openai_api_key", "tavily_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env == "prod" and "*" in self.cors_origins:
            raise ValueError("AGENTFLOW_CORS_ORIGINS may not be '*' when AGENTFLOW_ENV=prod")
        if self.executor == "queue" and not self.is_postgres:
            raise ValueError("AGENTFLOW_EXECUTOR=queue needs a PostgreSQL AGENTFLOW_DATABASE_URL")
        return self

    def model_for(self, role: str, default: str | None = None) -> str:
        """An agent role's model: ``AGENTFLOW_MODEL_<ROLE>``, else the workflow's default, else ``AGENTFLOW_MODEL``."""
        specific: str | None = getattr(self, f"model_{role}", None)
        return specific or default or self.model

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
