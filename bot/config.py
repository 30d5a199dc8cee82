"""Settings from the environment and .env (INTERLUDE_ prefix); built in main(), never at import."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.library.schema import parse_hhmm

OFFICIAL_API_URL = "https://api.telegram.org"
TELEGRAM_MOST_PER_SECOND = 1000  # with paid broadcasts


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="INTERLUDE_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        env_ignore_empty=True,  # `INTERLUDE_TELEGRAM_TOKEN=` copied from .env.example means unset
    )

    # Telegram
    telegram_token: SecretStr | None = None
    telegram_api_url: str = OFFICIAL_API_URL
    bot_username: str | None = None

    # Storage and library
    data_dir: Path = Path("data")
    # Where the trained crisis classifier is kept between starts; the data folder's cache/ unless
    # set (several bots of one checkout, such as the tests', can share one).
    classifier_cache_dir: Path | None = None
    database_url: str | None = None
    prompts_dir: Path = Path("prompts")
    # Keys that seal client text at rest, comma-separated, the current key first (older keys
    # after it still open what they sealed). Make one with `interlude keys generate`.
    encryption_keys: SecretStr | None = None

    # The practice, as clients see it
    practice_name: str = "your practice"
    crisis_line: str = (
        "If you are in danger or thinking about ending your life, please call or text 988 "
        "(in the US) or your local emergency number now."
    )
    # Which crisis resources in prompts/safety.yaml a crisis reply gives (US, GB, DE, ES, ...).
    crisis_region: str = "US"
    default_timezone: str = "America/New_York"
    quiet_hours_start: str = "21:30"
    quiet_hours_end: str = "08:00"

    # Replies older than this many days are deleted by a daily job (0 keeps them until a client
    # or the practice erases them). Clients are told the period when they consent.
    reply_retention_days: int = Field(default=365, ge=0)

    # Prompt life
    invite_ttl_hours: float = Field(default=168, gt=0)
    therapist_link_ttl_hours: float = Field(default=24, gt=0)
    prompt_expiry_hours: float = Field(default=20, gt=0)
    reminder_after_hours: float = Field(default=4, gt=0)
    catch_up_grace_minutes: float = Field(default=120, ge=0)
    planning_horizon_hours: float = Field(default=48, gt=0)

    # Delivery
    dispatch_interval_seconds: float = Field(default=1.0, ge=0)  # 0 turns the job off (tests)
    dispatch_batch: int = Field(default=200, ge=1)
    # Telegram's overall limit is 30 messages a second; paid broadcasts allow up to 1,000. More
    # is accepted only against another Bot API server (the emulator's benchmarks, limits off).
    rate_limit_per_second: float = Field(default=30, gt=0)
    rate_limit_per_chat: float = Field(default=1, gt=0)
    rate_limit_chat_burst: int = Field(default=2, ge=1)  # one under Telegram's burst, for jitter
    send_max_attempts: int = Field(default=8, ge=1)
    send_lease_seconds: float = Field(default=60, gt=0)
    poll_timeout_seconds: int = Field(default=25, ge=0, le=50)

    # Webhook mode (`interlude run --webhook URL`): where this process listens (a proxy in
    # front forwards the public URL here), and the secret Telegram sends in a header (by
    # default derived from the token, so every process of one bot agrees on it).
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=0, le=65535)
    webhook_secret: SecretStr | None = None

    # Check-ins that call for care: intensity at or above this twice in a row, or shut down on
    # this many days running, send a grounding exercise and alert the therapist (a client's own
    # thresholds, set with `interlude client thresholds`, come first).
    checkin_alert_intensity: int = Field(default=9, ge=1, le=10)
    checkin_alert_shutdown_days: int = Field(default=3, ge=1, le=14)
    grounding_prompt_activated: str = "grounding.slow-exhale"
    grounding_prompt_shut_down: str = "grounding.gentle-return"

    # The therapist dashboard and its JSON API, served by the bot's own process.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8000, ge=0, le=65535)  # 0 turns the dashboard off
    web_base_url: str | None = None  # how therapists reach it, for sign-in links
    web_secret_key: SecretStr | None = None  # signs session cookies; generated when unset
    web_idle_minutes: float = Field(default=15, gt=0)
    login_link_minutes: float = Field(default=10, gt=0)

    log_level: str = "INFO"
    demo_port: int = 8081

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value

    @model_validator(mode="after")
    def _within_telegrams_limit(self) -> Settings:
        if self.rate_limit_per_second > TELEGRAM_MOST_PER_SECOND \
                and self.telegram_api_url.rstrip("/") == OFFICIAL_API_URL:
            raise ValueError(f"rate_limit_per_second: Telegram allows at most "
                             f"{TELEGRAM_MOST_PER_SECOND:,} messages a second (paid broadcasts)")
        return self

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    @property
    def demo(self) -> bool:
        return self.telegram_token is None

    @property
    def sqlalchemy_url(self) -> str:
        # Without a token everything is the demo, kept apart from a real practice's data.
        name = "demo.db" if self.demo else "interlude.db"
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / name}"

    @property
    def cache_dir(self) -> Path:
        """What can be rebuilt from the code and the prompts (the trained crisis classifier)."""
        return self.classifier_cache_dir or self.data_dir / "cache"

    @property
    def web_url(self) -> str:
        return (self.web_base_url or f"http://{self.web_host}:{self.web_port}").rstrip("/")

    @property
    def quiet_hours(self) -> tuple[time, time]:
        return parse_hhmm(self.quiet_hours_start), parse_hhmm(self.quiet_hours_end)

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.catch_up_grace_minutes)

    @property
    def expiry(self) -> timedelta:
        return timedelta(hours=self.prompt_expiry_hours)

    @property
    def reminder_after(self) -> timedelta:
        return timedelta(hours=self.reminder_after_hours)

    @property
    def horizon(self) -> timedelta:
        return timedelta(hours=self.planning_horizon_hours)
