"""Check-ins that call for care: a grounding exercise for the client, an alert for the therapist."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.db.models import Alert, Client
from bot.services import onboarding
from tests.e2e.conftest import BotHarness, Person

BERLIN = ZoneInfo("Europe/Berlin")
FIRST_EVENING = datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN)


async def check_in(harness: BotHarness, person: Person, day: int, state: str, intensity: int) -> None:
    """The evening check-in of `day` (0 = the first evening), answered with buttons."""
    harness.clock.set(FIRST_EVENING + timedelta(days=day))
    assert harness.runtime is not None
    await harness.runtime.planner.plan()
    await harness.deliver_due()
    await person.tap(state)
    await person.tap(str(intensity))


async def alerts(harness: BotHarness) -> list[str]:
    async with harness.db.transaction() as session:
        return list(await session.scalars(select(Alert.category).order_by(Alert.id)))


async def linked_therapist(harness: BotHarness) -> Person:
    async with harness.db.transaction() as session:
        issued = await onboarding.add_therapist(session, "Dr Rivera", harness.clock, harness.settings)
    rivera = await harness.person("Rivera")
    await rivera.send(f"/start {issued.token}")
    return rivera


async def test_very_high_activation_twice_brings_grounding_and_an_alert(harness: BotHarness) -> None:
    """Two check-ins at 9 or more in a row: a grounding exercise from the library, and an alert."""
    rivera = await linked_therapist(harness)
    _, sam = await harness.joined("Sam")
    await check_in(harness, sam, 0, "Activated", 9)
    assert await alerts(harness) == []
    assert "add a few words" in await sam.last()
    await check_in(harness, sam, 1, "Activated", 10)
    exercise = harness.library.prompt("grounding.slow-exhale").text
    assert await sam.last() == exercise
    assert await alerts(harness) == ["high_activation"]
    assert "very high activation twice in a row" in await rivera.last()


async def test_shut_down_three_days_running_brings_a_gentle_exercise(harness: BotHarness) -> None:
    """Shut down in the check-ins of three days running: the gentler exercise, and an alert."""
    _, sam = await harness.joined("Sam")
    for day in range(3):
        await check_in(harness, sam, day, "Shut down", 4)
    assert await sam.last() == harness.library.prompt("grounding.gentle-return").text
    assert await alerts(harness) == ["prolonged_shutdown"]


async def test_a_clients_own_threshold_comes_first(harness: BotHarness) -> None:
    """With the client's threshold set to 7, two check-ins at 7 are enough; at 6 nothing happens."""
    client_id, sam = await harness.joined("Sam")
    async with harness.db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        client.alert_intensity = 7
    await check_in(harness, sam, 0, "Activated", 6)
    await check_in(harness, sam, 1, "Activated", 7)
    assert await alerts(harness) == []
    await check_in(harness, sam, 2, "Activated", 8)
    assert await alerts(harness) == ["high_activation"]
