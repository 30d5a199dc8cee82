"""Therapists run their practice from Telegram: clients, invites, one-off prompts, pauses,
alerts, a dashboard link and the daily digest; clients keep their own /pause and /help."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from telegram import BotCommandScopeChat

from bot.db.models import Alert, AuditEntry, Client
from bot.services import onboarding, signin
from tests.e2e.conftest import BotHarness, Person


async def linked_therapist(harness: BotHarness, name: str = "Dr Rivera",
                           first_name: str = "Rivera") -> tuple[int, Person]:
    """The therapist (made if missing) with their own Telegram account linked."""
    async with harness.db.transaction() as session:
        existing = next((t for t in await session.scalars(select(onboarding.Therapist))
                         if t.display_name == name), None)  # names are sealed: compared here
        therapist_id = existing.id if existing else (
            await onboarding.add_therapist(session, name, harness.clock, harness.settings)).id
        token = await onboarding.new_therapist_link(session, therapist_id, harness.clock,
                                                    harness.settings)
    person = await harness.person(first_name)
    await person.send(f"/start {token}")
    assert "now linked" in await person.last()
    return therapist_id, person


async def test_a_therapist_runs_a_day_from_telegram(harness: BotHarness) -> None:
    """List clients, invite one, send a prompt, read the answer, pause and resume, sign in."""
    sam_id, sam = await harness.joined("Sam")
    therapist_id, rivera = await linked_therapist(harness)
    assert harness.runtime is not None
    menu = await harness.runtime.application.bot.get_my_commands(scope=BotCommandScopeChat(rivera.id))
    assert {"clients", "client", "send", "dashboard"} <= {c.command for c in menu}
    clients_menu = await harness.runtime.application.bot.get_my_commands()
    assert "clients" not in {c.command for c in clients_menu}

    await rivera.send("/clients")
    listing = await rivera.last()
    assert "Your clients (1)" in listing
    assert "Sam: active, last reply never" in listing

    await rivera.send("/invite Jo B.")
    assert "Jo B. is invited" in await rivera.last()
    assert "https://t.me/" in await rivera.last()

    await rivera.send("/send Sam integration.no-such-prompt")
    assert "That didn't work: there is no prompt 'integration.no-such-prompt'" in await rivera.last()
    await rivera.send("/send Sam integration.body-after")
    assert "Queued for Sam: integration.body-after" in await rivera.last()
    await harness.deliver_due()
    assert "body" in (await sam.last()).lower()
    await sam.send("Warm and heavy, like after a swim.")

    await rivera.send("/client sam")
    record = await rivera.last()
    assert "Sam: active" in record
    assert "Warm and heavy, like after a swim." in record
    assert "Next prompts (Europe/Berlin time)" in record

    await rivera.send("/pause Sam 3")
    assert "Sam is paused until Thu 05 Mar" in await rivera.last()
    async with harness.db.transaction() as session:
        client = await session.get(Client, sam_id)
        assert client is not None
        assert client.paused_until is not None
    await rivera.send("/resume Sam")
    assert "Prompts for Sam start again." in await rivera.last()

    await rivera.send("/dashboard")
    link = (await rivera.last()).split("\n")[-1]
    assert link.startswith(f"{harness.settings.web_url}/login/")
    async with harness.db.transaction() as session:
        check = await signin.check_link(session, link.rsplit("/", 1)[1], harness.clock)
    assert check.state is signin.LinkState.VALID

    async with harness.db.transaction() as session:
        entries = list(await session.scalars(select(AuditEntry).where(
            AuditEntry.therapist_id == therapist_id, AuditEntry.channel == "telegram")))
    assert {"viewed_client_list", "invited_client", "sent_prompt", "viewed_client", "paused",
            "resumed"} <= {e.action for e in entries}


async def test_clients_keep_their_own_commands(harness: BotHarness) -> None:
    """A client's /pause pauses themselves; therapist commands are unknown to them."""
    _, sam = await harness.joined("Sam")
    await linked_therapist(harness)
    await sam.send("/clients")
    assert "I don't know that one" in await sam.last()
    await sam.send("/client Sam")
    assert "I don't know that one" in await sam.last()
    await sam.send("/pause")
    assert "Paused. Nothing will arrive until you type /resume." in await sam.last()


async def test_a_therapist_never_reaches_another_therapists_client(harness: BotHarness) -> None:
    """Names are looked up among the therapist's own clients only."""
    await harness.joined("Sam")
    _, okafor = await linked_therapist(harness, "Dr Okafor", "Okafor")
    await okafor.send("/client Sam")
    assert "None of your clients is called “Sam”" in await okafor.last()
    await okafor.send("/send Sam checkin.now")
    assert "None of your clients" in await okafor.last()
    await okafor.send("/pause Sam")
    assert "None of your clients" in await okafor.last()
    await okafor.send("/clients")
    assert "No clients yet" in await okafor.last()


async def test_alerts_are_listed_and_acknowledged_with_a_button(harness: BotHarness) -> None:
    """/alerts shows each open alert with a button; pressing it acknowledges that alert."""
    sam_id, _ = await harness.joined("Sam")
    therapist_id, rivera = await linked_therapist(harness)
    async with harness.db.transaction() as session:
        session.add(Alert(client_id=sam_id, therapist_id=therapist_id, category="self_harm",
                          created_at=harness.clock.now()))
    await rivera.send("/alerts")
    assert "Sam, self-harm" in await rivera.last()
    await rivera.tap("Acknowledge")
    async with harness.db.transaction() as session:
        alert = await session.scalar(select(Alert))
        assert alert is not None
        assert alert.acknowledged_at is not None
    await rivera.send("/alerts")
    assert await rivera.last() == "No open alerts."


async def test_the_daily_digest_comes_once_at_the_chosen_time(harness: BotHarness) -> None:
    """At the chosen local time: who answered, who has gone quiet, open alerts; clients' words
    only once the therapist turns them on; never twice in a day."""
    _, sam = await harness.joined("Sam")
    quiet_id, _ = await harness.joined("Kim")
    _, rivera = await linked_therapist(harness)
    await rivera.send("/digest 18:30")
    assert "Your daily digest comes at 18:30 (Europe/Berlin)" in await rivera.last()
    await rivera.send("/send Sam integration.body-after")
    await harness.deliver_due()
    await sam.send("Slept through the night for once.")
    async with harness.db.transaction() as session:
        kim = await session.get(Client, quiet_id)
        assert kim is not None
        kim.created_at = datetime(2026, 2, 20, tzinfo=UTC)

    assert harness.runtime is not None
    assert await harness.runtime.send_digests() == 0  # 10:00 in Berlin: not yet
    harness.clock.set(datetime(2026, 3, 2, 17, 31, tzinfo=UTC))  # 18:31 in Berlin
    assert await harness.runtime.send_digests() == 1
    await harness.settle()
    text = await rivera.last()
    assert "Answered in the last day: Sam (1)" in text
    assert "Quiet for 3 days or more: Kim (10 days)" in text
    assert "Slept through" not in text
    assert await harness.runtime.send_digests() == 0

    await rivera.send("/digest words on")
    assert "includes a line of what clients wrote: on" in await rivera.last()
    harness.clock.set(datetime(2026, 3, 2, 23, 0, tzinfo=UTC))
    await sam.send("And a calm morning.")
    harness.clock.set(datetime(2026, 3, 3, 17, 45, tzinfo=UTC))
    assert await harness.runtime.send_digests() == 1
    await harness.settle()
    assert "Sam: And a calm morning." in await rivera.last()
