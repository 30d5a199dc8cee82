"""/mydata gives a client everything kept about them; /delete erases it for real; retention."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.db.models import Alert, CheckIn, Client, Consent, CoupleEnd, Delivery, Erasure, Reply
from bot.services import audit, onboarding, safety
from tests.e2e.conftest import BotHarness, Person
from tests.e2e.couples_helpers import SHARE_YES, couple_row, linked_couple, send_pair

BERLIN = ZoneInfo("Europe/Berlin")


async def _evening_with_answers(harness: BotHarness, *names: str) -> list[tuple[int, Person]]:
    """Clients who joined in the morning and answered the evening check-in, state and words."""
    joined = [await harness.joined(name) for name in names or ("Sam",)]
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    for _, person in joined:
        await person.tap("Activated")
        await person.tap("7")
        await person.send("my jaw is tight after the call with my sister")
    return joined


async def _document(harness: BotHarness, person: Person) -> tuple[dict[str, Any], dict[str, Any]]:
    message = (await harness.control.bot_messages(person.id))[-1]
    assert "document" in message, message
    assert harness.runtime is not None
    file = await harness.runtime.application.bot.get_file(message["document"]["file_id"])
    return message, json.loads(bytes(await file.download_as_bytearray()))


async def _count(harness: BotHarness, model: Any, *where: Any) -> int:
    async with harness.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_mydata_sends_everything_kept_as_a_readable_file(harness: BotHarness) -> None:
    [(_, sam)] = await _evening_with_answers(harness)
    await sam.send("/mydata")
    message, data = await _document(harness, sam)
    assert message["document"]["file_name"] == "my-interlude-data.json"
    assert message["caption"].startswith("Here is everything I keep about you")
    assert data["about_you"]["name"] == "Sam"
    assert data["about_you"]["time_zone"] == "Europe/Berlin"
    assert [c["withdrawn"] for c in data["consents"]] == [None]
    assert data["check_ins"] == [{"at": data["check_ins"][0]["at"], "state": "activated", "intensity": 7}]
    words = [r["words"] for r in data["replies"] if r["words"]]
    assert words == ["my jaw is tight after the call with my sister"]
    assert data["prompts"][0]["sent"] is not None
    assert data["prompts"][0]["prompt"]  # the prompt as it was sent


async def test_delete_asks_first_then_erases_for_real_and_tells_the_therapist(
        harness: BotHarness) -> None:
    async with harness.db.transaction() as session:
        therapist = await onboarding.add_therapist(session, "Dr Rivera", harness.clock, harness.settings)
    rivera = await harness.person("Rivera")
    await rivera.send(f"/start {therapist.token}")
    (sam_id, sam), (ana_id, ana) = await _evening_with_answers(harness, "Sam", "Ana")
    await sam.send("some nights I want to end my life")  # an alert the practice must keep counting
    anas_replies = await _count(harness, Reply, Reply.client_id == ana_id)

    await sam.send("/delete")
    assert "erases your answers, check-ins and details for good" in await sam.last()
    assert "Dr Rivera will be told" in await sam.last()
    await sam.tap("No, keep it")
    assert await sam.last() == "Okay, nothing has been erased."
    assert await _count(harness, Reply, Reply.client_id == sam_id) == 2

    await sam.send("/delete")
    earlier = (await harness.control.bot_messages(sam.id))[-1]["message_id"]
    await sam.send("/delete")  # asked again: the earlier button no longer erases anything
    await harness.control.press(sam.id, earlier, button_text="Yes, erase everything")
    await harness.settle()
    assert "haven't erased anything" in await sam.last()
    latest = (await harness.control.bot_messages(sam.id))[-2]["message_id"]
    await harness.control.press(sam.id, latest, callback_data="erase:yes:forged", forge=True)
    await harness.settle()
    assert "haven't erased anything" in await sam.last()
    assert await _count(harness, Client, Client.id == sam_id) == 1

    await sam.send("/delete")
    await sam.tap("Yes, erase everything")
    assert (await sam.last()).startswith("Done. I've erased your answers and details.")
    assert await rivera.last() == ("Sam erased their data with /delete. Their answers and details "
                                   "are gone, and no more prompts will go to them.")

    for model in (Reply, CheckIn, Delivery, Consent):
        assert await _count(harness, model, model.client_id == sam_id) == 0
    assert await _count(harness, Client, Client.id == sam_id) == 0
    async with harness.db.transaction() as session:
        erasure = await session.scalar(select(Erasure))
        alert = await session.scalar(select(Alert))
        report = await safety.report(session, datetime(2026, 3, 1, tzinfo=BERLIN),
                                     datetime(2026, 4, 1, tzinfo=BERLIN))
    assert erasure is not None
    assert (erasure.former_client_id, erasure.requested_by) == (sam_id, "client")
    async with harness.db.transaction() as session:
        logged = [(e.action, e.client_id) for e in await audit.entries(session)]
    assert ("data erased", sam_id) in logged
    assert alert is not None
    assert alert.client_id is None  # kept for the referral count, no longer about anyone
    assert report["by_category"]["suicidal"] == 1
    # Ana's data is all still there.
    assert await _count(harness, Reply, Reply.client_id == ana_id) == anas_replies == 1
    assert await _count(harness, CheckIn, CheckIn.client_id == ana_id) == 1

    await sam.send("/start")  # the account is no longer known
    assert "can only talk with people whose therapist has invited them" in await sam.last()
    await sam.send("/mydata")
    assert await sam.last() == "I don't keep anything about you: there is nothing to send."
    await ana.send("still here")
    assert await _count(harness, Reply, Reply.client_id == ana_id) == anas_replies + 1


async def test_mydata_and_delete_still_work_after_stop(harness: BotHarness) -> None:
    [(_, sam)] = await _evening_with_answers(harness)
    await sam.send("/stop")
    await sam.send("/mydata")
    _, data = await _document(harness, sam)
    assert data["about_you"]["status"] == "stopped"
    assert data["consents"][0]["withdrawn"] is not None
    await sam.send("/delete")
    await sam.tap("Yes, erase everything")
    assert await _count(harness, Client) == 0


async def test_retention_deletes_old_replies_and_keeps_recent_ones(harness: BotHarness) -> None:
    [(client_id, sam)] = await _evening_with_answers(harness)
    harness.clock.advance(timedelta(days=harness.settings.reply_retention_days - 1))
    await sam.send("a recent thought")
    await harness.settle()
    harness.clock.advance(timedelta(days=2))
    assert harness.runtime is not None
    assert await harness.runtime.purge_old_replies() == 1  # the old words (and the old check-in)
    async with harness.db.transaction() as session:
        left = list(await session.scalars(select(Reply.text).where(Reply.client_id == client_id)))
    assert left == ["a recent thought"]
    assert await _count(harness, CheckIn) == 0
    assert await harness.runtime.purge_old_replies() == 0


async def test_erasing_one_partner_ends_the_couple_and_leaves_the_other_partners_data(
        harness: BotHarness) -> None:
    couple = await linked_couple(harness)
    sam, alex = couple.sam, couple.alex
    await send_pair(harness, couple.id)
    await alex.person.send("The way you said goodnight.")
    await alex.person.tap(SHARE_YES)
    await sam.person.send("Thank you for the note in my bag.")  # not yet shared: never revealed
    alex_before = await _count(harness, Reply, Reply.client_id == alex.client_id)

    await sam.person.send("/delete")
    await sam.person.tap("Yes, erase everything")
    await harness.deliver_due()
    assert await _count(harness, Reply, Reply.client_id == sam.client_id) == 0
    assert await _count(harness, Client, Client.id == sam.client_id) == 0
    assert await _count(harness, Reply, Reply.client_id == alex.client_id) == alex_before
    assert all("note in my bag" not in text for text in await alex.person.said())
    assert (await couple_row(harness, couple.id)).end_reason is CoupleEnd.STOPPED
    assert "Paired prompts with Sam have ended for now." in await alex.person.last()
