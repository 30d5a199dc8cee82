"""The questionnaire program and the records it leaves: a baseline at enrolment, 24 hours
before each medicine session and 1, 7 and 28 days after, moved by a new session; then the
scores read back as trends, CSV and a FHIR R4 Bundle the R4 models accept."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.models import Client, Delivery, DeliveryStatus, Enrolment
from bot.library import Library
from bot.scheduling.planner import Planner
from bot.services import fhir, questionnaires, schedules
from tests.integration.helpers import active_client
from tests.measures_helpers import answered, validate_r4

BERLIN = ZoneInfo("Europe/Berlin")


async def _upcoming(db: Database, library: Library, clock: FakeClock, settings: Settings,
                    client_id: int) -> list[tuple[str, str]]:
    async with db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        planned = await schedules.upcoming(session, client, library, clock, settings, limit=20)
    return [(f"{p.local:%a %d %b %H:%M}", p.prompt_key.removeprefix("questionnaire."))
            for p in planned]


async def _record(db: Database, library: Library, clock: FakeClock, client_id: int,
                  at: datetime) -> list[Enrolment]:
    async with db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        return await schedules.record_medicine_session(session, client, at, library, clock,
                                                       therapist_id=client.therapist_id)


async def test_baseline_then_each_new_session_moves_the_questionnaires(
        db: Database, clock: FakeClock, settings: Settings, library: Library) -> None:
    """Enrolled before any session: the baseline goes out at once and nothing else waits.
    A session recorded on Friday brings both questionnaires the day before and 1, 7 and 28
    days after; a second session moves them all to it; the baseline is never asked again."""
    client_id = await active_client(db, clock, settings, library, program="measures-kap")
    planner = Planner(db, library, clock, settings)
    await planner.plan()
    async with db.transaction() as session:
        baseline = list(await session.scalars(select(Delivery).order_by(Delivery.id)))
    assert [(d.prompt_key, d.due_at) for d in baseline] == [
        ("questionnaire.phq-9", clock.now()), ("questionnaire.gad-7", clock.now())]
    assert await _upcoming(db, library, clock, settings, client_id) == [
        ("Mon 02 Mar 10:00", "phq-9"), ("Mon 02 Mar 10:00", "gad-7")]
    clock.advance(minutes=1)
    assert await _upcoming(db, library, clock, settings, client_id) == []

    moved = await _record(db, library, clock, client_id, datetime(2026, 3, 6, 10, tzinfo=BERLIN))
    assert len(moved) == 1
    assert moved[0].continues_id is not None
    both = ("phq-9", "gad-7")
    assert await _upcoming(db, library, clock, settings, client_id) == [
        (when, key) for when in ("Thu 05 Mar 10:00", "Sat 07 Mar 18:00", "Fri 13 Mar 18:00",
                                 "Fri 03 Apr 18:00") for key in both]
    await planner.plan()

    await _record(db, library, clock, client_id, datetime(2026, 3, 20, 10, tzinfo=BERLIN))
    assert await _upcoming(db, library, clock, settings, client_id) == [
        (when, key) for when in ("Thu 19 Mar 10:00", "Sat 21 Mar 18:00", "Fri 27 Mar 18:00",
                                 "Fri 17 Apr 18:00") for key in both]
    # A fortnight on, planning has made the pre-session pair and nothing from the first run.
    clock.set(datetime(2026, 3, 18, 12, tzinfo=BERLIN))
    await planner.plan()
    async with db.transaction() as session:
        rows = list(await session.scalars(select(Delivery).order_by(Delivery.due_at, Delivery.id)))
        runs = list(await session.scalars(select(Enrolment).order_by(Enrolment.id)))
    assert [(d.prompt_key.removeprefix("questionnaire."), f"{d.due_at.astimezone(BERLIN):%d %b %H:%M}")
            for d in rows] == [("phq-9", "02 Mar 10:00"), ("gad-7", "02 Mar 10:00"),
                               ("phq-9", "19 Mar 10:00"), ("gad-7", "19 Mar 10:00")]
    assert all(d.status is DeliveryStatus.PENDING for d in rows)
    assert [r.ended_at is None for r in runs] == [False, False, True]
    assert runs[1].continues_id == runs[0].id
    assert runs[2].continues_id == runs[0].id


async def test_a_baseline_waiting_for_the_morning_survives_a_new_session(
        db: Database, clock: FakeClock, settings: Settings, library: Library) -> None:
    """Joining late in the evening, the baseline waits for quiet hours to end; recording the
    first session before then moves the program but keeps the baseline."""
    clock.set(datetime(2026, 3, 2, 23, 0, tzinfo=BERLIN))
    client_id = await active_client(db, clock, settings, library, program="measures-kap")
    await Planner(db, library, clock, settings).plan()
    await _record(db, library, clock, client_id, datetime(2026, 3, 9, 10, tzinfo=BERLIN))
    async with db.transaction() as session:
        waiting = list(await session.scalars(select(Delivery).where(
            Delivery.status == DeliveryStatus.PENDING).order_by(Delivery.id)))
    assert [(d.prompt_key, f"{d.due_at.astimezone(BERLIN):%d %b %H:%M}") for d in waiting] == [
        ("questionnaire.phq-9", "03 Mar 08:00"), ("questionnaire.gad-7", "03 Mar 08:00")]


async def _course(db: Database, clock: FakeClock, settings: Settings,
                  library: Library) -> int:
    """A client with a baseline, a session, and three PHQ-9s and two GAD-7s after it."""
    client_id = await active_client(db, clock, settings, library, program=None)
    await _record(db, library, clock, client_id, datetime(2026, 3, 6, 10, tzinfo=BERLIN))
    phq, gad = "questionnaire.phq-9", "questionnaire.gad-7"
    await answered(db, library, settings, clock, client_id, phq, [3, 3, 2, 2, 2, 2, 2, 1, 1],
                   datetime(2026, 3, 2, 18, tzinfo=BERLIN))  # 18, moderately severe
    await answered(db, library, settings, clock, client_id, gad, [2, 2, 2, 2, 1, 1, 1],
                   datetime(2026, 3, 2, 18, 10, tzinfo=BERLIN))  # 11, moderate
    await answered(db, library, settings, clock, client_id, phq, [2, 2, 1, 1, 1, 1, 1, 1, 0],
                   datetime(2026, 3, 7, 18, tzinfo=BERLIN))  # 10, moderate
    await answered(db, library, settings, clock, client_id, phq, [1, 1, None],
                   datetime(2026, 3, 10, 18, tzinfo=BERLIN))  # left after two items
    await answered(db, library, settings, clock, client_id, phq, [1, 1, 1, 0, 0, 0, 0, 0, 0],
                   datetime(2026, 3, 13, 18, tzinfo=BERLIN))  # 3, minimal
    await answered(db, library, settings, clock, client_id, gad, [1, 1, 1, 1, 1, 1, 0],
                   datetime(2026, 3, 13, 18, 10, tzinfo=BERLIN))  # 6, mild
    clock.advance(hours=24)
    async with db.transaction() as session:
        await questionnaires.close_expired(session, clock)
    return client_id


async def test_trends_give_change_response_and_remission(
        db: Database, clock: FakeClock, settings: Settings, library: Library) -> None:
    """PHQ-9 18 -> 3 is a response and a remission; GAD-7 11 -> 6 is neither; the half-done
    PHQ-9 is kept, counted as incomplete, and left out of the scores."""
    client_id = await _course(db, clock, settings, library)
    async with db.transaction() as session:
        found = await questionnaires.results(session, client_id)
    phq, gad = questionnaires.trends(found)
    assert [r.total for r in phq.results] == [18, 10, 3]
    assert (phq.change, phq.change_percent, phq.response, phq.remission) == (-15, -83, True, True)
    assert phq.incomplete == 1
    assert [r.values for r in found if r.status == "incomplete"] == [
        (1, 1, None, None, None, None, None, None, None)]
    assert (gad.baseline and gad.baseline.band, gad.latest and gad.latest.band) == (
        "moderate", "mild")
    assert (gad.change, gad.response, gad.remission) == (-5, False, False)


async def test_csv_export_has_a_row_per_questionnaire_with_its_items(
        db: Database, clock: FakeClock, settings: Settings, library: Library) -> None:
    """One row per questionnaire begun, oldest first: score, band, change from baseline, the
    response and remission flags on each instrument's latest row, and every item's value."""
    client_id = await _course(db, clock, settings, library)
    async with db.transaction() as session:
        text = questionnaires.export_csv(client_id, await questionnaires.results(session, client_id))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[:10] == list(questionnaires.CSV_COLUMNS)
    assert [(r["questionnaire"], r["status"], r["total"], r["band"], r["change_from_baseline"],
             r["response"], r["remission"]) for r in rows] == [
        ("PHQ-9", "complete", "18", "moderately severe", "0", "", "no"),
        ("GAD-7", "complete", "11", "moderate", "0", "", "no"),
        ("PHQ-9", "complete", "10", "moderate", "-8", "no", "no"),
        ("PHQ-9", "incomplete", "", "", "", "", ""),
        ("PHQ-9", "complete", "3", "minimal", "-15", "yes", "yes"),
        ("GAD-7", "complete", "6", "mild", "-5", "no", "no"),
    ]
    assert [rows[0][f"item_{n}"] for n in range(1, 10)] == ["3", "3", "2", "2", "2", "2", "2", "1", "1"]
    assert [rows[1][f"item_{n}"] for n in range(1, 10)] == ["2", "2", "2", "2", "1", "1", "1", "", ""]
    assert [rows[3][f"item_{n}"] for n in range(1, 4)] == ["1", "1", ""]
    assert rows[0]["started_at"].startswith("2026-03-02T17:00")


async def test_fhir_bundle_is_valid_r4_with_loinc_totals(
        db: Database, clock: FakeClock, settings: Settings, library: Library) -> None:
    """The Bundle reads as FHIR R4 (4.0.1) in fhir.resources: a Patient, a QuestionnaireResponse
    per questionnaire (the half-done one 'stopped'), and an Observation per total coded
    44261-6 (PHQ-9) or 70274-6 (GAD-7) with its band, derived from its response."""
    client_id = await _course(db, clock, settings, library)
    async with db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        bundle = fhir.bundle(client, await questionnaires.results(session, client_id), clock.now())
    checked = validate_r4(bundle)
    assert checked["problems"] == []
    assert checked["fhir_version"] == "4.0.1"
    pair = ["QuestionnaireResponse", "Observation"]
    assert checked["types"] == ["Patient", *pair * 3, "QuestionnaireResponse", *pair * 2]
    resources = [entry["resource"] for entry in bundle["entry"]]
    responses = [r for r in resources if r["resourceType"] == "QuestionnaireResponse"]
    assert [r["status"] for r in responses] == ["completed"] * 3 + ["stopped", "completed", "completed"]
    assert responses[0]["questionnaire"] == "http://loinc.org/q/44249-1"
    first_items = responses[0]["item"]
    assert [i["linkId"] for i in first_items] == [str(n) for n in range(1, 10)]
    assert first_items[8]["answer"][0]["valueCoding"] == {
        "system": "http://loinc.org", "code": "LA6569-3", "display": "Several days"}
    assert first_items[8]["definition"] == "http://loinc.org/44260-8"
    assert len(responses[3]["item"]) == 2  # only what was answered
    totals = [r for r in resources if r["resourceType"] == "Observation"]
    assert [(o["code"]["coding"][0]["code"], o["valueInteger"], o["interpretation"][0]["text"])
            for o in totals] == [("44261-6", 18, "moderately severe"), ("70274-6", 11, "moderate"),
                                 ("44261-6", 10, "moderate"), ("44261-6", 3, "minimal"),
                                 ("70274-6", 6, "mild")]
    patient = bundle["entry"][0]["fullUrl"]
    assert all(r["subject"]["reference"] == patient for r in resources[1:])
    urls = {entry["fullUrl"] for entry in bundle["entry"]}
    assert all(o["derivedFrom"][0]["reference"] in urls for o in totals)
    # Exported again, the same resources keep the same ids.
    async with db.transaction() as session:
        again = fhir.bundle(client, await questionnaires.results(session, client_id),
                            clock.now() + timedelta(hours=1))
    assert [e["fullUrl"] for e in again["entry"]] == [e["fullUrl"] for e in bundle["entry"]]


async def test_a_broken_bundle_is_refused_by_the_r4_models() -> None:
    """The validator is real: a total written as words, or a field R4 does not have, fails."""
    broken = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "Observation", "status": "final", "code": {"text": "PHQ-9 total"},
        "valueInteger": "eighteen"}}]}
    assert validate_r4(broken)["problems"]
    unknown = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "QuestionnaireResponse", "status": "completed", "score": 3}}]}
    assert validate_r4(unknown)["problems"]
