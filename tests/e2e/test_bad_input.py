"""Bad, odd and hostile input: a clear, kind answer, and nothing stored that should not be."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.db.models import Client, Delivery, InboxUpdate, Reply, ReplyRevision
from tests.e2e.conftest import BotHarness

BERLIN = ZoneInfo("Europe/Berlin")


async def count(harness: BotHarness, model: type) -> int:
    async with harness.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_start_with_unknown_used_and_expired_tokens(harness: BotHarness) -> None:
    """Each broken invite gets its own plain explanation; none binds anyone."""
    _, used_token = await harness.invite("Used")
    owner = await harness.person("Owner")
    await harness.onboard(owner, used_token)
    _, old_token = await harness.invite("Late")

    stranger = await harness.person("Stranger")
    await stranger.send("/start not-a-real-token")
    assert "don't recognise this link" in await stranger.last()
    await stranger.send(f"/start {used_token}")
    assert "already been used" in await stranger.last()
    harness.clock.advance(timedelta(hours=harness.settings.invite_ttl_hours, minutes=1))
    await stranger.send(f"/start {old_token}")
    assert "has expired" in await stranger.last()
    async with harness.db.transaction() as session:
        bound = set(await session.scalars(select(Client.telegram_user_id)))
    assert stranger.id not in bound


async def test_consent_button_of_a_used_invite_does_nothing(harness: BotHarness) -> None:
    """Pressing an old consent button after the invite was used elsewhere binds nobody."""
    _, token = await harness.invite("Sam")
    first, second = await harness.person("First"), await harness.person("Second")
    await first.send(f"/start {token}")
    await second.send(f"/start {token}")
    await first.tap("Yes, I agree")
    await second.tap("Yes, I agree")
    assert "already been used" in await second.last()
    async with harness.db.transaction() as session:
        bound = list(await session.scalars(select(Client.telegram_user_id)))
    assert bound == [first.id]


async def test_people_never_invited_are_told_kindly_and_nothing_is_kept(harness: BotHarness) -> None:
    """Someone who found the bot gets a polite answer; their words are not stored anywhere."""
    stranger = await harness.person("Curious")
    await stranger.send("/start")
    assert "only talk with people whose therapist has invited them" in await stranger.last()
    await stranger.send("I'm having a really hard day")
    assert "only talk with people" in await stranger.last()
    await stranger.send_payload(voice={"duration": 3})
    assert await count(harness, Reply) == 0
    async with harness.db.transaction() as session:
        payloads = list(await session.scalars(select(InboxUpdate.payload)))
    assert payloads
    assert all(p is None for p in payloads)


async def test_group_chats_are_ignored(harness: BotHarness) -> None:
    """A message in a group the bot was added to gets no answer and is not stored."""
    _, sam = await harness.joined("Sam")
    group = {"id": -100123, "type": "group", "title": "Family"}
    before = await harness.control.stats()
    await harness.control.send_text(sam.id, "hello group", chat=group)
    await harness.settle()
    await sam.send_payload(text="/help", chat=group)
    after = await harness.control.stats()
    assert after["delivered"].get(str(group["id"]), 0) == 0
    assert after["methods"].get("sendMessage") == before["methods"].get("sendMessage")
    assert await count(harness, Reply) == 0


async def test_stickers_photos_and_locations_are_declined_kindly(harness: BotHarness) -> None:
    """Things the bot cannot keep get one short sentence saying so, and nothing is stored."""
    _, sam = await harness.joined("Sam")
    for payload in ({"sticker": {}}, {"photo": {}}, {"location": {"latitude": 52.5, "longitude": 13.4}}):
        await sam.send_payload(**payload)
        assert "only keep words and voice notes" in await sam.last()
    await sam.send("/dance")
    assert "Type /help" in await sam.last()
    assert await count(harness, Reply) == 0


async def test_longest_message_is_stored_whole(harness: BotHarness) -> None:
    """A reply of 4096 characters (Telegram's maximum) is kept in full."""
    _, sam = await harness.joined("Sam")
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    text = ("Lots to say. " * 400)[:4095] + "é"
    assert len(text) == 4096
    await sam.send(text)
    async with harness.db.transaction() as session:
        stored = await session.scalar(select(Reply.text))
    assert stored == text


async def test_edited_answer_is_updated_and_history_kept(harness: BotHarness) -> None:
    """Editing an answer in Telegram updates the stored reply; the earlier words are kept."""
    _, sam = await harness.joined("Sam")
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    sent = await sam.send("I felt calm")
    await harness.control.edit(sam.id, sent["message_id"], "I felt calm, then tense")
    await harness.settle()
    async with harness.db.transaction() as session:
        reply = await session.scalar(select(Reply))
        revisions = list(await session.scalars(select(ReplyRevision.text)))
    assert reply is not None
    assert reply.text == "I felt calm, then tense"
    assert reply.edited_at is not None
    assert revisions == ["I felt calm"]


async def test_forged_button_cannot_answer_another_clients_prompt(harness: BotHarness) -> None:
    """Callback data naming someone else's prompt is refused and changes nothing."""
    _, token_a = await harness.invite("Ana")
    _, token_b = await harness.invite("Ben")
    ana, ben = await harness.person("Ana"), await harness.person("Ben")
    await harness.onboard(ana, token_a)
    await harness.onboard(ben, token_b)
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    async with harness.db.transaction() as session:
        anas = await session.scalar(select(Delivery).join(Client).where(Client.telegram_user_id == ana.id))
    assert anas is not None
    bens_message = (await harness.control.bot_messages(ben.id))[-1]
    for data in (
        f"ci:{anas.id}:s:grounded",
        f"ans:{anas.id}:0:3",
        "ci:abc:s:x",
        "ans:1:2",
        "consent:y:stolen",
        "nonsense",
    ):
        await harness.control.press(ben.id, bens_message["message_id"], callback_data=data, forge=True)
        await harness.settle()
    answers = [a.get("text") for a in await harness.control.callback_answers(ben.id)]
    assert "That button doesn't work here." in answers
    async with harness.db.transaction() as session:
        from bot.db.models import CheckIn

        assert await session.scalar(select(CheckIn)) is None
        refreshed = await session.get(Delivery, anas.id)
    assert refreshed is not None
    assert refreshed.answered_at is None


async def test_button_on_a_closed_prompt_says_so(harness: BotHarness) -> None:
    """Tapping a check-in button after the prompt expired gets a gentle 'this one has closed'."""
    _, sam = await harness.joined("Sam")
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    harness.clock.advance(hours=21)
    await harness.deliver_due()  # housekeeping closes it
    await sam.tap("Grounded")
    answers = [a.get("text") for a in await harness.control.callback_answers(sam.id)]
    assert answers[-1] == "This one has closed, so there's no need to answer it now."


async def test_pressing_consent_twice_does_not_confuse(harness: BotHarness) -> None:
    """A second tap on 'Yes, I agree' (or its replay after a crash) records consent once."""
    from bot.db.models import Consent

    _, token = await harness.invite("Sam")
    sam = await harness.person("Sam")
    await sam.send(f"/start {token}")
    consent_message = (await harness.control.bot_messages(sam.id))[-1]
    for _ in range(2):
        await harness.control.press(sam.id, consent_message["message_id"],
                                    callback_data=f"consent:y:{token}", forge=True)
        await harness.settle()
    said = await sam.said()
    assert not any("already been used" in text for text in said)
    assert await count(harness, Consent) == 1
