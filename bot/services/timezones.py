"""Finding a client's IANA time zone from a button or from what they type."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

# Likely zones by Telegram language code: a short list of buttons, never a guess we act on.
LIKELY_ZONES = {
    "en": ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
           "Europe/London", "Australia/Sydney"),
    "de": ("Europe/Berlin", "Europe/Vienna", "Europe/Zurich"),
    "es": ("Europe/Madrid", "America/Mexico_City", "America/Bogota",
           "America/Argentina/Buenos_Aires"),
    "fr": ("Europe/Paris", "Europe/Brussels", "America/Montreal"),
    "nl": ("Europe/Amsterdam", "Europe/Brussels"),
    "pt": ("Europe/Lisbon", "America/Sao_Paulo"),
    "it": ("Europe/Rome",),
}


def is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return "/" in name or name == "UTC"


@cache
def _by_city() -> dict[str, str]:
    cities: dict[str, str] = {}
    for name in sorted(available_timezones()):
        if name.startswith(("Etc/", "SystemV/")) or "/" not in name:
            continue
        cities.setdefault(name.rsplit("/", 1)[1].replace("_", " ").lower(), name)
    return cities


def resolve(text: str) -> str | None:
    """An IANA zone from 'Europe/Berlin', 'europe/berlin', 'Berlin' or 'new york'; else None."""
    cleaned = " ".join(text.strip().split())
    if not cleaned or len(cleaned) > 64:
        return None
    for name in available_timezones():
        if name.lower() == cleaned.lower().replace(" ", "_"):
            return name
    return _by_city().get(cleaned.lower())


def likely(language_code: str | None, *first: str | None) -> list[str]:
    """Up to six zones to offer as buttons, the most likely first."""
    language = (language_code or "en").split("-")[0].lower()
    zones = [z for z in first if z] + list(LIKELY_ZONES.get(language, LIKELY_ZONES["en"]))
    return list(dict.fromkeys(zones))[:6]


def local_time(zone: str, moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M")


def label(zone: str) -> str:
    """A zone name as a person reads it: 'America/New York', not 'America/New_York'."""
    return zone.replace("_", " ")
