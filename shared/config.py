"""Settings of one cyclecare process, read from the environment once at start-up.

The environment variable names are the contract (DESIGN.md, "Configuration"); the
``CYCLECARE_*`` extras below them are optional operational knobs. A bad value stops the
process with a message that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.validation import one_line


class SettingsError(SystemExit):
    """Raised (and shown to the operator) when the environment is not valid."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    # --- the contract ---------------------------------------------------------------
    kafka_bootstrap_servers: str | None = Field(None, alias="KAFKA_BOOTSTRAP_SERVERS")
    twilio_account_sid: str | None = Field(None, alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str | None = Field(None, alias="TWILIO_AUTH_TOKEN")
    twilio_from: str | None = Field(None, alias="TWILIO_FROM")
    twilio_api_base: str = Field("https://api.twilio.com", alias="TWILIO_API_BASE")
    smtp_host: str | None = Field(None, alias="SMTP_HOST")
    smtp_port: int = Field(587, alias="SMTP_PORT", ge=1, le=65535)
    smtp_username: str | None = Field(None, alias="SMTP_USERNAME")
    smtp_password: str | None = Field(None, alias="SMTP_PASSWORD")
    smtp_from: str = Field("cyclecare@localhost", alias="SMTP_FROM")
    smtp_starttls: bool = Field(False, alias="SMTP_STARTTLS")
    # Unset: this process's own local address, http://localhost:$CYCLECARE_HTTP_PORT (below).
    public_url: str = Field("http://localhost:6066", alias="CYCLECARE_PUBLIC_URL")
    clinics_file: Path | None = Field(None, alias="CYCLECARE_CLINICS")
    http_port: int = Field(6066, alias="CYCLECARE_HTTP_PORT", ge=0, le=65535)
    log_format: str = Field("text", alias="CYCLECARE_LOG_FORMAT")
    api_token: str | None = Field(None, alias="CYCLECARE_API_TOKEN")
    database_url: str | None = Field(None, alias="CYCLECARE_DATABASE_URL")  # the portal's; unset: SQLite under data_dir

    # --- optional operational settings ----------------------------------------------
    twilio_messaging_service_sid: str | None = Field(None, alias="TWILIO_MESSAGING_SERVICE_SID")
    http_host: str = Field("0.0.0.0", alias="CYCLECARE_HTTP_HOST")
    topic_namespace: str = Field("cyclecare", alias="CYCLECARE_TOPIC_NAMESPACE", pattern=r"^[A-Za-z0-9_.-]+$")
    partitions: int = Field(8, alias="CYCLECARE_PARTITIONS", ge=1, le=1024)
    replication_factor: int = Field(1, alias="CYCLECARE_REPLICATION_FACTOR", ge=1, le=7)
    data_dir: Path = Field(Path("var"), alias="CYCLECARE_DATA_DIR")
    table_store: str = Field("memory://", alias="CYCLECARE_TABLE_STORE")
    rebalance_timeout: float = Field(60.0, alias="CYCLECARE_REBALANCE_TIMEOUT", gt=0)
    clock_start: datetime | None = Field(None, alias="CYCLECARE_CLOCK_START")
    clock_speed: float = Field(1.0, alias="CYCLECARE_CLOCK_SPEED", gt=0)
    clock_anchor: float | None = Field(None, alias="CYCLECARE_CLOCK_ANCHOR")
    fetch_max_wait_ms: int = Field(100, alias="CYCLECARE_FETCH_MAX_WAIT_MS", ge=1, le=5000)
    fetch_idle_wait_ms: int = Field(1000, alias="CYCLECARE_FETCH_IDLE_WAIT_MS", ge=1, le=5000)
    # whether the broker answers a waiting fetch as soon as records arrive; None (`auto`): ask it (shared.fetch_wait)
    fetch_answered_at_once: bool | None = Field(None, alias="CYCLECARE_FETCH_ANSWERED_AT_ONCE")
    tick_seconds: float = Field(1.0, alias="CYCLECARE_TICK_SECONDS", gt=0)
    sms_rate_per_second: float = Field(10.0, alias="CYCLECARE_SMS_RATE", gt=0)
    sms_burst: float | None = Field(None, alias="CYCLECARE_SMS_BURST", ge=1)  # default: a tenth of a second's rate
    notifier_in_flight: int = Field(64, alias="CYCLECARE_NOTIFIER_IN_FLIGHT", ge=1, le=10000)
    parent_pid: int | None = Field(None, alias="CYCLECARE_PARENT_PID")  # set by `cyclecare run`: stop when it dies
    stuck_after_seconds: float = Field(30.0, alias="CYCLECARE_STUCK_AFTER_SECONDS", gt=0)
    service_urls: str | None = Field(None, alias="CYCLECARE_SERVICE_URLS")  # JSON {service: base URL}, for 404 hints
    advertised_url: str | None = Field(None, alias="CYCLECARE_ADVERTISED_URL")  # how peer workers reach this one's HTTP
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="CYCLECARE_LOG_LEVEL")
    portal_url: str = Field("http://localhost:6069", alias="CYCLECARE_PORTAL_URL")  # links the portal prints; https: Secure cookies
    fhir_sink_url: str | None = Field(None, alias="CYCLECARE_FHIR_SINK_URL")  # the EHR's FHIR base: the portal pushes results there
    fhir_sink_token: str | None = Field(None, alias="CYCLECARE_FHIR_SINK_TOKEN")  # its bearer token

    @model_validator(mode="before")
    @classmethod
    def _public_url_defaults_to_own_address(cls, values: object) -> object:
        """One default for the URL webhooks are signed against: where this process answers
        locally, so a request signed for ``http://localhost:<port>/twilio/sms`` passes."""
        if not isinstance(values, dict) or values.get("CYCLECARE_PUBLIC_URL") or values.get("public_url"):
            return values
        port = values.get("CYCLECARE_HTTP_PORT", values.get("http_port", 6066))
        return {**values, "CYCLECARE_PUBLIC_URL": f"http://localhost:{port}"}

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return "json" if value.lower() == "json" else "text"

    @field_validator("fetch_answered_at_once", mode="before")
    @classmethod
    def _auto_is_unknown(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() == "auto" else value

    @field_validator("clock_start")
    @classmethod
    def _aware_start(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-01-05T09:00:00+00:00")
        return value

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap_servers or "localhost:9092"

    @property
    def broker_url(self) -> str:
        return ";".join(f"kafka://{s.strip()}" for s in self.bootstrap_servers.split(",") if s.strip())


def env_var_names() -> set[str]:
    """Every environment variable a cyclecare process reads."""
    return {field.alias for field in Settings.model_fields.values() if field.alias}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    environ = os.environ if environ is None else environ
    known = env_var_names()
    values: dict[str, object] = {k: v for k, v in environ.items() if k in known and v != ""}
    values.update(overrides)
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise SettingsError(f"cyclecare: invalid configuration: {one_line(exc)}") from None
