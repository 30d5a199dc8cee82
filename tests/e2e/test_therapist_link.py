"""A therapist links their own Telegram account with the one-time link `therapist add` prints."""

from __future__ import annotations

from datetime import timedelta

from bot.db.models import Therapist
from bot.services import onboarding
from tests.e2e.conftest import BotHarness


async def test_therapist_link_binds_once_and_then_expires(harness: BotHarness) -> None:
    """The link binds the account that opens it; a second use, or a late one, is refused."""
    async with harness.db.transaction() as session:
        issued = await onboarding.add_therapist(session, "Dr Okafor", harness.clock, harness.settings)
    rivera = await harness.person("Amara")
    await rivera.send(f"/start {issued.token}")
    assert (
        await rivera.last()
        == "Hello Dr Okafor. This Telegram account is now linked to your therapist profile."
    )
    async with harness.db.transaction() as session:
        therapist = await session.get(Therapist, issued.id)
        assert therapist is not None
        assert therapist.telegram_user_id == rivera.id

    someone = await harness.person("Someone")
    await someone.send(f"/start {issued.token}")
    assert "expired or has already been used" in await someone.last()

    async with harness.db.transaction() as session:
        fresh = await onboarding.new_therapist_link(session, issued.id, harness.clock, harness.settings)
    harness.clock.advance(timedelta(hours=harness.settings.therapist_link_ttl_hours, seconds=1))
    await someone.send(f"/start {fresh}")
    assert "expired or has already been used" in await someone.last()
    async with harness.db.transaction() as session:
        therapist = await session.get(Therapist, issued.id)
        assert therapist is not None
        assert therapist.telegram_user_id == rivera.id
