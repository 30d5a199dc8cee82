"""PHQ-9 and GAD-7 in Telegram, end to end against the emulator: one item at a time, a way
back, resumed after an interruption and a restart, kept half-done at expiry, and item 9 of the
PHQ-9 going to the therapist at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.db.models import Alert, QuestionnaireResponse, QuestionnaireStatus
from bot.services import onboarding, review
from tests.e2e.conftest import BotHarness, Person

BERLIN = ZoneInfo("Europe/Berlin")
NONE, SEVERAL, MORE_THAN_HALF, NEARLY = ("Not at all", "Several days", "More than half the days",
                                         "Nearly every day")


async def _send(harness: BotHarness, client_id: int, key: str = "questionnaire.phq-9") -> None:
    async with harness.db.transaction() as session:
        await review.send_now(session, client_id=client_id, prompt_key=key,
                              library=harness.library, clock=harness.clock,
                              settings=harness.settings)
    await harness.deliver_due()


async def _response(harness: BotHarness) -> QuestionnaireResponse:
    async with harness.db.transaction() as session:
        found = await session.scalar(select(QuestionnaireResponse))
    assert found is not None
    return found


async def _answer(person: Person, *labels: str) -> None:
    for label in labels:
        await person.tap(label)


async def test_a_questionnaire_is_interrupted_and_resumed_across_a_restart(
        harness: BotHarness) -> None:
    """Items come one at a time with 'n of 9'; back one shows the answer given; after a
    restart the same buttons carry on, and writing instead brings the current item back."""
    client_id, sam = await harness.joined("Sam", program=None)
    await _send(harness, client_id)
    opening = await sam.last()
    assert "PHQ-9 · 1 of 9" in opening
    assert "Little interest or pleasure in doing things" in opening
    assert "your therapist reads your answer to question 9" in opening
    assert await sam.buttons() == [NONE, SEVERAL, MORE_THAN_HALF, NEARLY]

    await _answer(sam, SEVERAL, MORE_THAN_HALF, NONE, NEARLY)
    assert "PHQ-9 · 5 of 9" in await sam.last()
    assert "Poor appetite or overeating" in await sam.last()
    await sam.tap("‹ Back one")
    assert "PHQ-9 · 4 of 9" in await sam.last()
    assert f"✓ {NEARLY}" in await sam.buttons()
    await sam.tap(SEVERAL)  # a change of mind: item 4 is now 1
    assert "PHQ-9 · 5 of 9" in await sam.last()

    await harness.restart()
    await sam.tap(MORE_THAN_HALF)  # item 5, on the message sent before the restart
    assert "PHQ-9 · 6 of 9" in await sam.last()
    await sam.send("sorry, the kettle")
    said = await sam.said()
    assert "Here's where you left off" in said[-2]
    assert "PHQ-9 · 6 of 9" in said[-1]
    await _answer(sam, NONE, SEVERAL, NONE, NONE)
    assert await sam.last() == ("PHQ-9: all 9 answered. Thank you for taking the time; your "
                                "therapist will see your answers.")

    response = await _response(harness)
    assert response.status is QuestionnaireStatus.COMPLETE
    assert response.answers == {"values": [1, 2, 0, 1, 2, 0, 1, 0, 0], "total": 7, "band": "mild"}
    async with harness.db.transaction() as session:
        assert await session.scalar(select(Alert)) is None  # item 9 was "not at all"
    # An old button after the end changes nothing.
    before = len(await sam.said())
    await sam.tap(SEVERAL)
    assert len(await sam.said()) == before
    assert (await _response(harness)).answers["total"] == 7


async def test_item_9_alerts_the_therapist_at_once_even_in_quiet_hours(
        harness: BotHarness) -> None:
    """A non-zero answer to PHQ-9 item 9 at night: the client gets the crisis resources and
    the therapist an alert straight away, naming the item and the answer given."""
    async with harness.db.transaction() as session:
        therapist = await onboarding.add_therapist(session, "Dr Rivera", harness.clock,
                                                   harness.settings)
    rivera = await harness.person("Rivera")
    await rivera.send(f"/start {therapist.token}")
    client_id, sam = await harness.joined("Sam", program=None)
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await _send(harness, client_id)
    harness.clock.set(datetime(2026, 3, 2, 23, 40, tzinfo=BERLIN))  # inside quiet hours
    await _answer(sam, SEVERAL, SEVERAL, SEVERAL, SEVERAL, SEVERAL, NONE, NONE, NONE)
    assert "PHQ-9 · 9 of 9" in await sam.last()
    assert "better off dead" in await sam.last()
    await sam.tap(SEVERAL)

    said = await sam.said()
    care = next(text for text in said if text.startswith("Thank you for answering that honestly"))
    assert "988" in care
    assert "Dr Rivera has been told" in care
    # The questionnaire's own message, above the care, now says it is finished.
    assert said[-1] == care
    assert any(text.startswith("PHQ-9: all 9 answered") for text in said)
    alert_text = await rivera.last()
    assert alert_text.startswith("Safety alert: Sam answered “Several days” to item 9 of the PHQ-9")
    async with harness.db.transaction() as session:
        alerts = list(await session.scalars(select(Alert)))
    assert [(a.category, a.notified_at is not None) for a in alerts] == [("questionnaire_item",
                                                                          True)]
    response = await _response(harness)
    assert (response.answers["total"], response.answers["band"]) == (6, "mild")
    assert response.alert_id == alerts[0].id


async def test_a_half_done_questionnaire_is_kept_and_marked_incomplete_at_expiry(
        harness: BotHarness) -> None:
    """Left after three items, the questionnaire closes with its prompt: the three answers
    are kept, it has no score, and its buttons no longer take answers."""
    client_id, sam = await harness.joined("Sam", program=None)
    await _send(harness, client_id, "questionnaire.gad-7")
    assert "GAD-7 · 1 of 7" in await sam.last()
    await _answer(sam, SEVERAL, NONE, NEARLY)
    harness.clock.advance(hours=harness.settings.prompt_expiry_hours + 1)
    await harness.deliver_due()
    response = await _response(harness)
    assert response.status is QuestionnaireStatus.INCOMPLETE
    assert response.answers == {"values": [1, 0, 3, None, None, None, None]}
    await sam.tap(SEVERAL)
    answers = await harness.control.callback_answers(sam.id)
    assert answers[-1].get("text") == "This one has closed, so there's no need to answer it now."
    assert (await _response(harness)).answers == {"values": [1, 0, 3, None, None, None, None]}


async def test_the_program_sends_a_baseline_of_both_at_enrolment(harness: BotHarness) -> None:
    """A client invited into the questionnaire program gets the PHQ-9 and the GAD-7 once they
    have joined, and each is answered on its own message."""
    _client_id, sam = await harness.joined("Sam", program="measures-kap")
    await harness.deliver_due()
    said = await sam.said()
    assert any("PHQ-9 · 1 of 9" in text for text in said)
    assert any("GAD-7 · 1 of 7" in text for text in said)
    harness.clock.advance(timedelta(days=2))
    await harness.deliver_due()
    assert sum("· 1 of" in text for text in await sam.said()) == 2  # no session yet: nothing more


async def test_client_command_shows_latest_scores_and_flags(harness: BotHarness) -> None:
    """/client NAME in the therapist's Telegram gives each questionnaire's latest total, its
    change from the baseline, and response and remission when they apply."""
    from tests.e2e.test_therapist_commands import linked_therapist
    from tests.measures_helpers import answered

    client_id, _sam = await harness.joined("Sam", program=None)
    _, rivera = await linked_therapist(harness)
    args = (harness.db, harness.library, harness.settings, harness.clock, client_id)
    await answered(*args, "questionnaire.phq-9", [2, 2, 2, 2, 2, 2, 2, 1, 0],
                   datetime(2026, 3, 3, 18, tzinfo=BERLIN))  # 15
    await answered(*args, "questionnaire.phq-9", [1, 1, 1, 1, 0, 0, 0, 0, 0],
                   datetime(2026, 3, 10, 18, tzinfo=BERLIN))  # 4
    await answered(*args, "questionnaire.gad-7", [2, 2, 2, 1, 1, 1, 1],
                   datetime(2026, 3, 10, 18, 10, tzinfo=BERLIN))  # 10
    await rivera.send("/client Sam")
    record = await rivera.last()
    assert "Questionnaires:" in record
    assert ("PHQ-9: 4 (minimal) on 10 Mar; baseline 15 on 03 Mar, change -11 (-73%); response "
            "(at least half lower than baseline), remission (under 5)") in record
    assert "GAD-7: 10 (moderate) on 10 Mar, the baseline; no follow-up yet" in record
