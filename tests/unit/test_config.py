"""Settings: environment names, parsing, and refusals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.config import Settings, config_error_message


def test_provider_variables_keep_their_own_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("TAVILY_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ARXIV_API_URL", "http://127.0.0.1:9/api/query")
    monkeypatch.setenv("AGENTFLOW_MODEL_CRITIQUE", "gpt-4o")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-from-env"
    assert "sk-from-env" not in repr(settings)
    assert settings.openai_base_url.endswith("/v1")
    assert settings.model_for("critique") == "gpt-4o"
    assert settings.model_for("draft") == "gpt-4o-mini"


def test_cors_origins_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_CORS_ORIGINS", "http://a.example, http://b.example")
    assert Settings(_env_file=None).cors_origins == ["http://a.example", "http://b.example"]  # type: ignore[call-arg]


def test_blank_key_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "  ")
    assert Settings(_env_file=None).openai_api_key is None  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AGENTFLOW_PORT", "eighty"),
        ("AGENTFLOW_RATE_LIMIT_SUBMIT", "lots"),
        ("AGENTFLOW_LOG_FORMAT", "xml"),
        ("AGENTFLOW_MAX_BODY_BYTES", "10"),
        ("AGENTFLOW_MAX_HEADER_BYTES", "100"),
        ("AGENTFLOW_MAX_HEADER_COUNT", "3"),
        ("AGENTFLOW_DATABASE_URL", "mysql://x/y"),
        ("AGENTFLOW_DATABASE_URL", "sqlite:///sync-driver.db"),
        ("AGENTFLOW_DATABASE_URL", "not a url"),
        ("AGENTFLOW_STRUCTURED_OUTPUT_METHOD", "telepathy"),
    ],
)
def test_bad_values_are_named_in_one_line(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    message = config_error_message(caught.value)
    assert variable in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///./data/agentflow.db",
        "postgresql://agentflow@db:5432/agentflow",
        "postgresql+asyncpg://agentflow:pw@db/agentflow",
        "postgresql+psycopg://agentflow@db/agentflow",
    ],
)
def test_supported_database_urls(url: str) -> None:
    assert Settings(_env_file=None, database_url=url).database_url == url  # type: ignore[call-arg]


def test_a_refused_database_url_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_DATABASE_URL", "mysql://root:hunter2@db/app")
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    message = config_error_message(caught.value)
    assert "AGENTFLOW_DATABASE_URL" in message and "'mysql'" in message
    assert "hunter2" not in message


def test_production_refuses_wildcard_cors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_ENV", "prod")
    monkeypatch.setenv("AGENTFLOW_CORS_ORIGINS", "*")
    with pytest.raises(ValidationError, match="CORS"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_dotenv_is_read(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    env_file = Path(str(tmp_path)) / ".env"
    env_file.write_text("AGENTFLOW_MAX_CONCURRENT_WORKFLOWS=7\nTAVILY_API_KEY=tvly-dotenv\n")
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert settings.max_concurrent_workflows == 7
    assert settings.tavily_api_key is not None


def test_every_agent_role_has_its_model_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from workflows.registry import WORKFLOWS

    roles = {role for spec in WORKFLOWS.values() for role in spec.roles}
    for role in roles:
        monkeypatch.setenv(f"AGENTFLOW_MODEL_{role.upper()}", f"model-for-{role}")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert {role: settings.model_for(role) for role in roles} == {role: f"model-for-{role}" for role in roles}
