"""What every handler can reach: the services, through a typed context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from telegram.ext import Application, CallbackContext, ExtBot

from bot.clock import Clock
from bot.config import Settings
from bot.db.engine import Database
from bot.library import Library
from bot.safety.screening import Screener
from bot.scheduling.planner import Planner


@dataclass
class Services:
    db: Database
    library: Library
    clock: Clock
    settings: Settings
    planner: Planner
    screener: Screener
    # update_ids whose handling raised; the inbox keeps them for another try.
    failed_updates: set[int] = field(default_factory=set)
    # update_ids whose sender already got the crisis resources (a retry does not repeat them).
    crisis_answered: set[int] = field(default_factory=set)


class InterludeApplication(Application[Any, Any, Any, Any, Any, Any]):
    """PTB's Application, carrying our services (built by ApplicationBuilder.application_class)."""

    def __init__(self, *, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services


class InterludeContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    @property
    def services(self) -> Services:
        return cast(InterludeApplication, self.application).services
