"""Questionnaires answered as a client would, through the same service the bot's buttons call."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.models import Client, DeliveryStatus
from bot.library import Library
from bot.scheduling.planner import new_delivery
from bot.services import questionnaires

ROOT_MODULE = "tests.fhir_r4"


async def answered(db: Database, library: Library, settings: Settings, clock: FakeClock,
                   client_id: int, key: str, values: Sequence[int | None],
                   at: datetime) -> int:
    """A questionnaire sent at `at` and answered item by item (None: left there); its id."""
    clock.set(at)
    async with db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        delivery = new_delivery(client, library.prompts[key], scheduled_for=at, settings=settings)
        delivery.status, delivery.sent_at = DeliveryStatus.SENT, at
        session.add(delivery)
        await session.flush()
        for item, value in enumerate(values):
            if value is None:
                break
            asked = await questionnaires.answer(session, client, clock, delivery_id=delivery.id,
                                                item=item, value=value)
            assert asked.result in ("item", "done")
        return delivery.id


def validate_r4(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle read by fhir.resources' R4 models in a process of their own (tests/fhir_r4.py)."""
    run = subprocess.run([sys.executable, "-m", ROOT_MODULE], input=json.dumps(bundle),
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    result: dict[str, Any] = json.loads(run.stdout)
    return result
