"""Settings of the local Bot API emulator: Telegram's limits and the faults it can inject.

Tests, the demo and benchmarks start the emulator with one of these and change it
at run time through `POST /emulator/config`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class EmulatorConfig:
    # The bot's @username as getMe reports it and invite links show it.
    username: str = "InterludeDemoBot"

    # Telegram's broadcast limits: about 30 messages a second overall and one a
    # second in a chat, with a short burst allowed (DESIGN.md, guarantee 7).
    rate_limits: bool = True
    global_rate: float = 30.0
    global_burst: int = 30
    chat_rate: float = 1.0
    chat_burst: int = 3

    # Faults: the share of Bot API requests answered 502 Bad Gateway before
    # anything happens, and a delay added to every Bot API request.
    fail_ratio: float = 0.0
    latency_ms: int = 0

    # Telegram refuses to message a user who never wrote to the bot
    # ("bot can't initiate conversation with a user").
    require_user_start: bool = True

    # Webhook pushes: the pause after a failed push doubles from the first value
    # up to the second; Telegram's own pauses are longer, tests need short ones.
    webhook_retry_delay: float = 0.1
    webhook_retry_max_delay: float = 5.0
    webhook_timeout: float = 10.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial change in place, checking names and types.

        In place, because the Bot API, the rate limiter and the webhook pusher
        all hold this same object and must see a change at once.
        """
        fields = {field.name: field for field in dataclasses.fields(self)}
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in fields:
                raise ValueError(f"unknown setting {name!r}")
            checked[name] = _coerce(name, fields[name].type, value)
        for name, value in checked.items():
            setattr(self, name, value)

    def copy(self) -> EmulatorConfig:
        return dataclasses.replace(self)


def _coerce(name: str, declared: Any, value: Any) -> Any:
    # With `from __future__ import annotations` the field types are strings.
    kind = declared if isinstance(declared, str) else declared.__name__
    if kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    elif kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            if name == "fail_ratio" and value > 1:
                raise ValueError("fail_ratio is a share between 0 and 1")
            return float(value)
    elif kind == "str" and isinstance(value, str) and value:
        return value
    raise ValueError(f"setting {name!r} must be a non-negative {kind}")
