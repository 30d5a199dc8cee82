"""The repair exercise end to end: /repair, an invitation, every step with a pause, and a talk."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.models import Delivery, PairGroup, PairKind, PairState
from tests.e2e.conftest import BotHarness, Person
from tests.e2e.couples_helpers import SHARE_YES, linked_couple

STEPS = 7  # repair.kind-repair: what happened ... one thing to try next time
SCALE_STEP = 2  # "how strong was that feeling": 0-10 buttons


async def walk(person: Person, words: str, *, start: int = 0, stop: int = STEPS) -> None:
    """Answer steps start..stop-1 of the exercise: words, and a number on the scale step."""
    for step in range(start, stop):
        if step == SCALE_STEP:
            await person.tap("6")
        else:
            await person.send(f"{words} {step + 1}")


async def exercise(harness: BotHarness) -> PairGroup:
    async with harness.db.transaction() as session:
        group = await session.scalar(select(PairGroup).where(PairGroup.kind == PairKind.EXERCISE)
                                     .order_by(PairGroup.id.desc()))
        assert group is not None
        return group


async def test_repair_invites_the_partner_and_ends_with_a_talk_both_agree_to(
    harness: BotHarness,
) -> None:
    """/repair starts at once and invites the partner; when both finish they see what was shared
    and can agree on a 20-minute talk with a button."""
    couple = await linked_couple(harness)
    sam, alex = couple.sam.person, couple.alex.person
    await sam.send("/repair")
    said = await sam.said()
    assert "I've invited Alex to do this exercise too" in said[-2]
    assert "(1 of 7)" in said[-1]
    assert "Pause here" in await sam.buttons()
    assert "A grounding moment" in await sam.buttons()
    await harness.deliver_due()
    assert "Sam has started a repair exercise" in await alex.last()
    assert await alex.buttons() == ["I'd like to join", "Not this time"]
    await alex.tap("I'd like to join")
    assert "(1 of 7)" in await alex.last()

    await walk(sam, "Sam says")
    assert "would you like Alex to see your answer" in await sam.last()
    await sam.tap(SHARE_YES)
    await harness.deliver_due()
    assert all("Sam says" not in text for text in await alex.said())  # Alex is not done yet
    await walk(alex, "Alex says")
    await alex.tap(SHARE_YES)
    await harness.deliver_due()
    revealed = await sam.last()
    assert "Here's what Alex shared" in revealed
    assert "Alex says 1" in revealed
    assert "Alex says 7" in revealed
    assert "6/10" in revealed
    assert "20-minute repair talk" in revealed
    assert "Sam says 4" in await alex.last()

    await sam.tap("Suggest a 20-minute talk")
    slots = await sam.buttons()
    assert slots
    await sam.tap(slots[0])
    assert await sam.last() == f"I've asked Alex whether {slots[0]} works for them."
    await harness.deliver_due()
    assert "Sam suggests a 20-minute repair talk" in await alex.last()
    await alex.tap("That works for me")
    assert "Your 20-minute repair talk with Sam is set for" in await alex.last()
    await harness.deliver_due()
    assert f"Your 20-minute repair talk with Alex is set for {slots[0]}" in await sam.last()
    group = await exercise(harness)
    assert group.state is PairState.REVEALED
    assert group.talk_accepted_at is not None
    assert group.talk_proposed_by_client_id == couple.sam.client_id


async def test_a_declined_exercise_shows_nothing_to_either_partner(harness: BotHarness) -> None:
    """The invited partner may decline without penalty; nothing from that exercise is ever shown."""
    couple = await linked_couple(harness)
    sam, alex = couple.sam.person, couple.alex.person
    await sam.send("/repair")
    await harness.deliver_due()
    await alex.tap("Not this time")
    assert "Nothing from this exercise will be shared with you" in await alex.last()
    await harness.deliver_due()
    assert "Alex can't join this one right now, and that's okay." in await sam.last()
    await walk(sam, "Kept for me")
    assert await sam.last() == "That was the last step. Thank you for taking the time."
    harness.clock.advance(days=3)
    await harness.deliver_due()
    assert all("Kept for me" not in text for text in await alex.said())
    assert (await exercise(harness)).state is PairState.DECLINED
    # Declining left nothing behind: either may start a new one.
    await alex.send("/repair")
    assert "I've invited Sam" in (await alex.said())[-2]


async def test_every_step_offers_a_pause_and_a_grounding_moment(harness: BotHarness) -> None:
    """A grounding moment shows the library's exercise and the same step again; a pause waits for
    /repair, which picks up at the step where it paused."""
    couple = await linked_couple(harness)
    sam = couple.sam.person
    await sam.send("/repair")
    await walk(sam, "Step", stop=2)
    await sam.tap("A grounding moment")
    said = await sam.said()
    assert "Feel your feet on the floor" in said[-3]
    assert "(3 of 7)" in said[-1]
    await sam.tap("Pause here")
    assert "we'll pause here" in await sam.last()
    harness.clock.advance(hours=3)
    await sam.send("/repair")
    said = await sam.said()
    assert said[-2] == "Welcome back. Here's where you paused:"
    assert "(3 of 7)" in said[-1]
    await sam.tap("6")
    assert "(4 of 7)" in await sam.last()


async def test_an_exercise_survives_a_restart_midway(harness: BotHarness) -> None:
    """A restart in the middle of the exercise loses nothing: both carry on where they were."""
    couple = await linked_couple(harness)
    sam, alex = couple.sam.person, couple.alex.person
    await sam.send("/repair")
    await harness.deliver_due()
    await alex.tap("I'd like to join")
    await walk(sam, "Sam", stop=3)
    await walk(alex, "Alex", stop=1)
    await harness.restart()
    await sam.send("/repair")
    assert "(4 of 7)" in await sam.last()
    await walk(sam, "Sam", start=3)
    await walk(alex, "Alex", start=1)
    await sam.tap(SHARE_YES)
    await alex.tap(SHARE_YES)
    await harness.deliver_due()
    assert "Sam 1" in await alex.last()
    assert "Alex 7" in await sam.last()
    async with harness.db.transaction() as session:
        sides = list(await session.scalars(select(Delivery).where(
            Delivery.pair_group_id == (await exercise(harness)).id)))
    assert [d.progress for d in sides] == [STEPS, STEPS]
    assert all(d.revealed_at is not None for d in sides)
    # The dispatcher never sent the exercise a second time after the restart.
    assert sum("(1 of 7)" in text for text in await sam.said()) == 1
    assert sum("(1 of 7)" in text for text in await alex.said()) == 1
