"""Couples end to end: two partners, paired prompts, and what each may see of the other."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db.models import (
    Alert,
    ClientStatus,
    CoupleEnd,
    CouplePartner,
    Delivery,
    DeliveryStatus,
    PairState,
)
from bot.services import couples, onboarding
from bot.services.couples import SHARE_SETTLE
from tests.e2e.conftest import BotHarness
from tests.e2e.couples_helpers import (
    SHARE_NO,
    SHARE_YES,
    USUALLY_KEEP,
    couple_row,
    group_deliveries,
    group_row,
    linked_couple,
    send_pair,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


async def test_answers_stay_private_until_both_have_answered(harness: BotHarness) -> None:
    """Each partner is asked in their own chat; an answer reaches the other only once both answered."""
    couple = await linked_couple(harness, agree=False)
    sam, alex = couple.sam, couple.alex
    for partner, other in ((sam, "Alex"), (alex, "Sam")):
        question = await partner.person.last()
        assert f"paired prompts for you and {other}" in question
        assert await partner.person.buttons() == [
            "Yes, usually share mine", "Yes, usually keep mine", "Not now"]
    await sam.person.tap("Yes, usually share mine")
    assert await sam.person.last() == "Thank you. Paired prompts will start once Alex has agreed too."
    await alex.person.tap("Yes, usually share mine")
    assert "You've both agreed" in await alex.person.last()
    await harness.deliver_due()
    assert "Alex has agreed too" in await sam.person.last()

    group_id = await send_pair(harness, couple.id)
    assert "appreciated" in await sam.person.last()
    await sam.person.send("You made me tea when I was tired.")
    assert "would you like Alex to see your answer" in await sam.person.last()
    await sam.person.tap(SHARE_YES)
    assert await sam.person.last() == "Got it. Alex will see your answer once you've both answered."
    harness.clock.advance(hours=2)
    await harness.deliver_due()
    assert all("tea" not in text for text in await alex.person.said())
    assert (await group_row(harness, group_id)).state is PairState.OPEN

    await alex.person.send("You listened without fixing.")
    await alex.person.tap(SHARE_YES)
    await harness.deliver_due()
    sam_sees, alex_sees = await sam.person.last(), await alex.person.last()
    assert sam_sees.startswith("You've both answered. Here's what Alex shared:")
    assert "You listened without fixing." in sam_sees
    assert "Your answer went to Alex." in sam_sees
    assert "You made me tea when I was tired." in alex_sees
    group = await group_row(harness, group_id)
    assert group.state is PairState.REVEALED
    assert all(d.revealed_at is not None for d in await group_deliveries(harness, group_id))


async def test_an_answer_its_author_kept_is_never_shown(harness: BotHarness) -> None:
    """A partner never sees an answer its author chose to keep for themselves and the therapist."""
    couple = await linked_couple(harness)
    sam, alex = couple.sam, couple.alex
    await send_pair(harness, couple.id)
    await sam.person.send("Thank you for the walk on Sunday.")
    await sam.person.tap(SHARE_YES)
    await alex.person.send("Something I'd rather bring to session first.")
    await alex.person.tap(SHARE_NO)
    assert await alex.person.last() == "Got it. Your answer stays with you and Dr Rivera."
    await harness.deliver_due()
    harness.clock.advance(days=2)
    await harness.deliver_due()
    sam_said = await sam.person.said()
    assert all("rather bring to session" not in text for text in sam_said)
    assert "Alex kept their answer for themselves and Dr Rivera this time." in sam_said[-1]
    assert "Thank you for the walk on Sunday." in await alex.person.last()
    assert "Your answer stays with you and Dr Rivera." in await alex.person.last()


async def test_the_usual_choice_applies_when_no_button_is_pressed(harness: BotHarness) -> None:
    """Without a press, each answer follows its author's usual choice once a short while has passed."""
    couple = await linked_couple(harness, alex_usual=USUALLY_KEEP)
    sam, alex = couple.sam, couple.alex
    group_id = await send_pair(harness, couple.id)
    await sam.person.send("Your laugh at dinner.")
    await alex.person.send("Private for now.")
    assert "your usual choice: keep it for you and your therapist" in await alex.person.last()
    await harness.deliver_due()
    assert (await group_row(harness, group_id)).state is PairState.OPEN  # time to choose
    harness.clock.advance(SHARE_SETTLE + timedelta(seconds=31))
    await harness.deliver_due()
    assert (await group_row(harness, group_id)).state is PairState.REVEALED
    assert "Alex kept their answer" in await sam.person.last()
    assert "Your laugh at dinner." in await alex.person.last()


async def test_a_share_choice_can_change_until_the_reveal_and_not_after(harness: BotHarness) -> None:
    """Changing one's mind before the reveal counts; a press after it changes nothing."""
    couple = await linked_couple(harness)
    sam, alex = couple.sam, couple.alex
    await send_pair(harness, couple.id)
    await sam.person.send("First thought.")
    await sam.person.tap(SHARE_NO)
    await alex.person.send("Alex's answer.")
    await alex.person.tap(SHARE_YES)
    await harness.deliver_due()
    assert "Sam kept their answer" in await alex.person.last()
    await sam.person.send("Another message after the reveal.")
    sam_messages = await harness.control.bot_messages(sam.person.id)
    share_question = next(m for m in sam_messages if "would you like Alex" in m.get("text", ""))
    await harness.control.press(sam.person.id, share_question["message_id"], callback_data=(
        f"sh:{(await group_deliveries(harness, 1))[0].id}:1"), forge=True)
    await harness.settle()
    await harness.deliver_due()
    assert all("First thought." not in text for text in await alex.person.said())


async def test_a_couple_is_two_consenting_clients_of_one_therapist(harness: BotHarness) -> None:
    """Linking refuses one client twice, a client who has not consented, another therapist's client,
    and a client already in a couple; the database refuses a second open couple on its own."""
    sam_id, _ = await harness.joined("Sam", program=None)
    alex_id, _ = await harness.joined("Alex", program=None)
    kim_id, _ = await harness.joined("Kim", program=None)
    invited_id, _ = await harness.invite("Lee", program=None)
    async with harness.db.transaction() as session:
        other = await onboarding.add_therapist(session, "Dr Chen", harness.clock, harness.settings)
        foreign = await onboarding.invite_client(
            session, therapist_id=other.id, name="Jo", clock=harness.clock,
            settings=harness.settings, library=harness.library, timezone="Europe/Berlin")
    jo = await harness.person("Jo")
    await harness.onboard(jo, foreign.token)

    async def refused(first: int, second: int) -> str:
        with pytest.raises(couples.CoupleError) as error:
            async with harness.db.transaction() as session:
                await couples.link(session, first=first, second=second, clock=harness.clock,
                                   library=harness.library)
        return str(error.value)

    assert "two different clients" in await refused(sam_id, sam_id)
    assert "has not consented" in await refused(sam_id, invited_id)
    assert "different therapists" in await refused(sam_id, foreign.id)
    async with harness.db.transaction() as session:
        couple = await couples.link(session, first=sam_id, second=alex_id, clock=harness.clock,
                                    library=harness.library)
    assert f"already in couple {couple.id}" in await refused(kim_id, sam_id)
    assert f"already in couple {couple.id}" in await refused(alex_id, kim_id)

    # Even a write that skips the service cannot put Sam in two open couples.
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        async with harness.db.transaction() as session:
            session.add(CouplePartner(couple_id=couple.id, client_id=kim_id,
                                      open_client_id=sam_id, position=2))

    # A client who stopped can no longer be linked; once a couple ends, each may be linked anew.
    async with harness.db.transaction() as session:
        stored = await session.get(onboarding.Client, kim_id)
        assert stored is not None
        await onboarding.revoke_consent(session, stored, harness.clock)
    assert "has not consented" in await refused(kim_id, sam_id)


async def test_therapist_links_a_couple_on_telegram(harness: BotHarness) -> None:
    """/couple lists a therapist's own clients and links two of them; others' clients are refused."""
    async with harness.db.transaction() as session:
        rivera = await onboarding.add_therapist(session, "Dr Rivera", harness.clock, harness.settings)
    therapist = await harness.person("Rivera")
    await therapist.send(f"/start {rivera.token}")
    sam_id, sam = await harness.joined("Sam", program=None)
    alex_id, alex = await harness.joined("Alex", program=None)
    async with harness.db.transaction() as session:
        other = await onboarding.add_therapist(session, "Dr Chen", harness.clock, harness.settings)
        foreign = await onboarding.invite_client(
            session, therapist_id=other.id, name="Jo", clock=harness.clock,
            settings=harness.settings, library=harness.library, timezone="Europe/Berlin")
    await harness.onboard(await harness.person("Jo"), foreign.token)

    await therapist.send("/couple")
    listing = await therapist.last()
    assert f"{sam_id}  Sam" in listing
    assert f"{alex_id}  Alex" in listing
    assert "Jo" not in listing
    await therapist.send(f"/couple {sam_id} {foreign.id}")
    assert "no client" in await therapist.last()
    await therapist.send(f"/couple {sam_id} {alex_id}")
    assert "I've asked Sam and Alex" in await therapist.last()
    await harness.deliver_due()
    assert "paired prompts for you and Alex" in await sam.last()
    assert "paired prompts for you and Sam" in await alex.last()
    # A client typing /couple gets the usual answer for a command they do not have.
    await sam.send(f"/couple {sam_id} {alex_id}")
    assert "I don't know that one" in await sam.last()


async def test_a_partner_may_decline_pairing_without_penalty(harness: BotHarness) -> None:
    """'Not now' ends the couple; the partner who had agreed is told it won't start, no reason given."""
    couple = await linked_couple(harness, agree=False)
    await couple.sam.person.tap("Yes, usually share mine")
    await couple.alex.person.tap("Not now")
    assert "That's completely okay" in await couple.alex.person.last()
    await harness.deliver_due()
    assert await couple.sam.person.last() == (
        "Paired prompts with Alex won't start for now. Nothing changes for your own prompts.")
    row = await couple_row(harness, couple.id)
    assert (row.end_reason, row.ended_by_client_id) == (CoupleEnd.DECLINED, couple.alex.client_id)
    with pytest.raises(couples.CoupleError):
        async with harness.db.transaction() as session:
            await couples.send_now(session, couple.id, "repair.appreciation", harness.library,
                                   harness.clock, harness.settings)


async def test_stop_by_one_partner_ends_pairing_for_both_and_reveals_nothing_pending(
    harness: BotHarness,
) -> None:
    """/stop ends paired prompts for both; a reveal still waiting for quiet hours is never sent."""
    couple = await linked_couple(harness, alex_zone="Australia/Sydney")
    sam, alex = couple.sam, couple.alex
    # 10:00 in Berlin is 20:00 in Sydney: both get it. Alex answers that evening.
    group_id = await send_pair(harness, couple.id)
    await alex.person.send("The way you said goodnight.")
    await alex.person.tap(SHARE_YES)
    # Sam answers at noon in Berlin, 22:00 in Sydney: Sam gets Alex's answer now, while Alex's
    # copy of Sam's waits for the end of Alex's quiet hours.
    harness.clock.set(datetime(2026, 3, 2, 12, 0, tzinfo=BERLIN))
    await sam.person.send("Thank you for the note in my bag.")
    await sam.person.tap(SHARE_YES)
    await harness.deliver_due()
    assert "The way you said goodnight." in await sam.person.last()
    before_alex = len(await alex.person.said())
    # A second paired prompt waits for Alex's morning too; Sam has answered it.
    second = await send_pair(harness, couple.id, "repair.love-about-us")
    await sam.person.send("Something I love about us is the jokes.")
    await sam.person.send("/stop")
    await harness.deliver_due()
    harness.clock.set(datetime(2026, 3, 3, 8, 0, 30, tzinfo=ZoneInfo("Australia/Sydney")))
    await harness.deliver_due()
    alex_new = await alex.said_since(before_alex)
    assert all("note in my bag" not in text and "jokes" not in text for text in alex_new)
    assert all("love about us" not in text for text in alex_new)  # the second prompt never came
    assert alex_new[-1] == ("Paired prompts with Sam have ended for now. Your own prompts carry on "
                            "as before, and what you wrote stays with you and Dr Rivera.")
    assert (await group_row(harness, group_id)).state is PairState.REVEALED
    assert (await group_row(harness, second)).state is PairState.CANCELLED
    row = await couple_row(harness, couple.id)
    assert row.end_reason is CoupleEnd.STOPPED
    async with harness.db.transaction() as session:
        pending = list(await session.scalars(select(Delivery).where(
            Delivery.status == DeliveryStatus.PENDING)))
    assert pending == []


async def test_uncouple_tells_the_other_kindly_without_reasons(harness: BotHarness) -> None:
    """/uncouple stops paired prompts for both; the other hears it ended, not why or what was open."""
    couple = await linked_couple(harness, program="couple-repair-practice")
    sam, alex = couple.sam, couple.alex
    group_id = await send_pair(harness, couple.id)
    await alex.person.send("Something for Sam.")
    await alex.person.send("/uncouple")
    assert "paired prompts with Sam have ended" in await alex.person.last()
    await harness.deliver_due()
    said = await sam.person.last()
    assert said.startswith("Paired prompts with Alex have ended for now.")
    assert "Something for Sam." not in "".join(await sam.person.said())
    assert (await group_row(harness, group_id)).state is PairState.CANCELLED
    # Nothing paired is planned any more, and either may now be linked again.
    harness.clock.advance(days=8)
    before = len(await sam.person.said())
    await harness.runtime.planner.plan()  # type: ignore[union-attr]
    await harness.deliver_due()
    assert len(await sam.person.said()) == before
    await alex.person.send("/uncouple")
    assert await alex.person.last() == "You're not doing paired prompts with anyone right now."


async def test_crisis_language_in_a_paired_answer_goes_to_the_therapist_not_the_partner(
    harness: BotHarness,
) -> None:
    """A paired answer with crisis language is never passed on; the therapist is alerted."""
    async with harness.db.transaction() as session:
        rivera = await onboarding.add_therapist(session, "Dr Rivera", harness.clock, harness.settings)
    therapist = await harness.person("Rivera")
    await therapist.send(f"/start {rivera.token}")
    couple = await linked_couple(harness)
    sam, alex = couple.sam, couple.alex
    group_id = await send_pair(harness, couple.id, "repair.their-side")
    await sam.person.send("I think they felt unheard.")
    await sam.person.tap(SHARE_YES)
    await alex.person.send("honestly everyone would be better off without me")
    assert "988" in await alex.person.last()
    assert (await therapist.last()).startswith("Safety alert: Alex")
    harness.clock.advance(SHARE_SETTLE + timedelta(minutes=1))
    await harness.deliver_due()
    assert (await group_row(harness, group_id)).state is PairState.HELD
    assert all("better off" not in text for text in await sam.person.said())
    held = "You've both answered. This time, both answers stay with each of you and Dr Rivera."
    assert await sam.person.last() == held
    assert await alex.person.last() == held
    assert all("unheard" not in text for text in await alex.person.said())
    async with harness.db.transaction() as session:
        assert [a.category for a in await session.scalars(select(Alert))] == ["suicidal"]


async def test_crisis_words_added_by_an_edit_are_held_and_alerted(harness: BotHarness) -> None:
    """An answer edited into crisis language before the reveal is held back too."""
    couple = await linked_couple(harness)
    sam, alex = couple.sam, couple.alex
    group_id = await send_pair(harness, couple.id, "repair.their-side")
    sent = await alex.person.send("They seemed tired.")
    await harness.control.edit(alex.person.id, sent["message_id"], "i want to kill myself")
    await harness.settle()
    await alex.person.tap(SHARE_YES)
    await sam.person.send("Maybe lonely.")
    await sam.person.tap(SHARE_YES)
    await harness.deliver_due()
    assert (await group_row(harness, group_id)).state is PairState.HELD
    assert all("kill" not in text and "tired" not in text for text in await sam.person.said())


async def test_an_edit_after_the_reveal_is_kept_for_the_therapist_and_not_resent(
    harness: BotHarness,
) -> None:
    """A revealed answer is never changed in the partner's chat; the edit is kept with its history."""
    couple = await linked_couple(harness)
    sam, alex = couple.sam, couple.alex
    await send_pair(harness, couple.id)
    sent = await sam.person.send("The flowers.")
    await sam.person.tap(SHARE_YES)
    await alex.person.send("The coffee.")
    await alex.person.tap(SHARE_YES)
    await harness.deliver_due()
    alex_before = await alex.person.said()
    harness.clock.advance(minutes=5)
    await harness.control.edit(sam.person.id, sent["message_id"], "The flowers, and the card.")
    await harness.settle()
    await harness.deliver_due()
    assert "Alex already has the words you shared first" in await sam.person.last()
    assert await alex.person.said() == alex_before
    async with harness.db.transaction() as session:
        view = await couples.side_by_side(session, couple.id)
    sams = next(p for p in view["pair_groups"][0]["partners"] if p["client_id"] == couple.sam.client_id)
    assert sams["answers"][0]["text"] == "The flowers, and the card."
    assert sams["answers"][0]["edited_after_reveal"] is True
    assert sams["answers"][0]["earlier_versions"][0]["text"] == "The flowers."


async def test_everything_survives_a_restart_between_the_two_answers(harness: BotHarness) -> None:
    """The reveal state is in the database: a restart between answers loses nothing."""
    couple = await linked_couple(harness)
    sam, alex = couple.sam, couple.alex
    group_id = await send_pair(harness, couple.id)
    await sam.person.send("Before the restart.")
    await sam.person.tap(SHARE_YES)
    await harness.restart()
    await alex.person.send("After the restart.")
    await alex.person.tap(SHARE_YES)
    await harness.deliver_due()
    assert "After the restart." in await sam.person.last()
    assert "Before the restart." in await alex.person.last()
    assert (await group_row(harness, group_id)).state is PairState.REVEALED


async def test_partners_in_different_time_zones_get_the_prompt_at_their_own_local_time(
    harness: BotHarness,
) -> None:
    """Berlin and New York each get Wednesday's 19:30 prompt at 19:30 local; one expiry for both."""
    harness.clock.set(datetime(2026, 3, 2, 9, 30, tzinfo=NEW_YORK))  # both awake: 15:30 in Berlin
    couple = await linked_couple(harness, alex_zone="America/New_York",
                                 program="couple-repair-practice")
    sam, alex = couple.sam, couple.alex
    sam_before, alex_before = len(await sam.person.said()), len(await alex.person.said())
    harness.clock.set(datetime(2026, 3, 4, 12, 0, tzinfo=BERLIN))
    await harness.runtime.planner.plan()  # type: ignore[union-attr]  # the 10-minute job
    harness.clock.set(datetime(2026, 3, 4, 19, 30, 5, tzinfo=BERLIN))
    await harness.deliver_due()
    assert len(await sam.person.said()) == sam_before + 1
    assert len(await alex.person.said()) == alex_before  # 13:30 in New York
    harness.clock.set(datetime(2026, 3, 4, 19, 30, 5, tzinfo=NEW_YORK))
    await harness.deliver_due()
    assert len(await alex.person.said()) == alex_before + 1
    async with harness.db.transaction() as session:
        wednesday = list(await session.scalars(select(Delivery).where(
            Delivery.pair_group_id.is_not(None), Delivery.sent_at.is_not(None))))
    assert len(wednesday) == 2
    sent_local = {d.client_id: d.sent_at.astimezone(BERLIN if d.client_id == couple.sam.client_id
                                                     else NEW_YORK).strftime("%a %H:%M")
                  for d in wednesday if d.sent_at}
    assert set(sent_local.values()) == {"Wed 19:30"}
    # One expiry for the pair: the later partner's (New York's 19:30 plus 20 hours).
    expected = datetime(2026, 3, 4, 19, 30, tzinfo=NEW_YORK) + harness.settings.expiry
    assert {d.expires_at for d in wednesday} == {expected}
    # Sam answered hours before Alex even had it: still open, then revealed once Alex answers.
    group_id = wednesday[0].pair_group_id
    assert group_id is not None
    await sam.person.send("Your voice on the phone.")
    await sam.person.tap(SHARE_YES)
    harness.clock.set(datetime(2026, 3, 4, 21, 0, tzinfo=NEW_YORK))
    await alex.person.send("Your message this morning.")
    await alex.person.tap(SHARE_YES)
    await harness.deliver_due()
    assert (await group_row(harness, group_id)).state is PairState.REVEALED
    # 03:00 in Berlin is quiet hours: Sam's copy waits for 08:00 Berlin.
    assert "Your message this morning." not in "".join(await sam.person.said())
    harness.clock.set(datetime(2026, 3, 5, 8, 0, 30, tzinfo=BERLIN))
    await harness.deliver_due()
    assert "Your message this morning." in await sam.person.last()


async def test_a_partner_who_blocked_the_bot_leaves_the_other_told_gently(harness: BotHarness) -> None:
    """If one partner blocked the bot, the other's answer is kept and they are told gently at expiry."""
    couple = await linked_couple(harness)
    sam, alex = couple.sam, couple.alex
    await harness.control.block(alex.person.id)
    group_id = await send_pair(harness, couple.id)
    async with harness.db.transaction() as session:
        alex_row = await session.get(onboarding.Client, alex.client_id)
        assert alex_row is not None
        assert alex_row.status is ClientStatus.UNREACHABLE
    await sam.person.send("The way you fixed the bike.")
    await sam.person.tap(SHARE_YES)
    harness.clock.advance(harness.settings.expiry + timedelta(minutes=1))  # 06:01, quiet hours
    await harness.deliver_due()
    assert (await group_row(harness, group_id)).state is PairState.EXPIRED
    harness.clock.set(datetime(2026, 3, 3, 8, 0, 30, tzinfo=BERLIN))
    await harness.deliver_due()
    assert (await sam.person.last()).startswith(
        "This paired prompt has closed before you'd both answered, so nothing was passed on")
    await harness.control.unblock(alex.person.id)
    await alex.person.send("hello again")
    assert all("bike" not in text for text in await alex.person.said())


async def test_simultaneous_answers_are_revealed_once_to_each(harness: BotHarness) -> None:
    """Both answering and choosing at the same moment gives exactly one reveal to each partner."""
    couple = await linked_couple(harness)
    sam, alex = couple.sam, couple.alex
    group_id = await send_pair(harness, couple.id)
    await harness.control.send_text(sam.person.id, "Same moment, Sam.")
    await harness.control.send_text(alex.person.id, "Same moment, Alex.")
    await harness.settle()
    await harness.control.press(sam.person.id, (await harness.control.bot_messages(
        sam.person.id))[-1]["message_id"], button_text=SHARE_YES)
    await harness.control.press(alex.person.id, (await harness.control.bot_messages(
        alex.person.id))[-1]["message_id"], button_text=SHARE_YES)
    await harness.settle()
    await harness.deliver_due()
    await harness.deliver_due()
    sam_said, alex_said = await sam.person.said(), await alex.person.said()
    assert sum("Same moment, Alex." in text for text in sam_said) == 1
    assert sum("Same moment, Sam." in text for text in alex_said) == 1
    assert (await group_row(harness, group_id)).state is PairState.REVEALED


async def test_an_expiry_with_one_answer_reveals_nothing(harness: BotHarness) -> None:
    """When the prompt closes with one answer, the one who answered is told gently; nothing is shown."""
    couple = await linked_couple(harness)
    sam, alex = couple.sam, couple.alex
    group_id = await send_pair(harness, couple.id)
    await alex.person.send("Your patience this week.")
    await alex.person.tap(SHARE_YES)
    sam_before = await sam.person.said()
    harness.clock.advance(harness.settings.expiry + timedelta(minutes=1))  # 06:01, quiet hours
    await harness.deliver_due()
    assert (await group_row(harness, group_id)).state is PairState.EXPIRED
    harness.clock.set(datetime(2026, 3, 3, 8, 0, 30, tzinfo=BERLIN))
    await harness.deliver_due()
    assert await alex.person.last() == (
        "This paired prompt has closed before you'd both answered, so nothing was passed on either "
        "way. Your answer is kept for you and Dr Rivera. Thank you for taking the time.")
    assert all("patience" not in text for text in await sam.person.said())
    assert len(await sam.person.said()) <= len(sam_before) + 1  # at most the gentle reminder
    # An answer after it closed is kept for the therapist and passed on to no one.
    await sam.person.send("Late, sorry!")
    harness.clock.advance(hours=1)
    await harness.deliver_due()
    assert all("Late, sorry!" not in text for text in await alex.person.said())
