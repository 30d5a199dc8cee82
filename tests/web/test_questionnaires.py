"""Questionnaire scores in the dashboard and the API: trends with medicine sessions, change
from baseline, response and remission, the CSV and the FHIR Bundle, each read audited."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.db.models import AuditEntry, Client
from bot.services import schedules
from tests.measures_helpers import answered, validate_r4
from tests.web.conftest import Practice

BERLIN = ZoneInfo("Europe/Berlin")


async def _client_with_scores(practice: Practice) -> tuple[int, int]:
    therapist = await practice.therapist()
    client_id = await practice.client(therapist, "Robin")
    async with practice.db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        await schedules.record_medicine_session(
            session, client, datetime(2026, 3, 6, 10, tzinfo=BERLIN), practice.library,
            practice.clock, therapist_id=therapist)
    args = (practice.db, practice.library, practice.settings, practice.clock, client_id)
    await answered(*args, "questionnaire.phq-9", [3, 3, 2, 2, 2, 2, 2, 2, 0],
                   datetime(2026, 3, 2, 18, tzinfo=BERLIN))  # 18, moderately severe
    await answered(*args, "questionnaire.gad-7", [2, 2, 2, 2, 2, 1, 1],
                   datetime(2026, 3, 2, 18, 10, tzinfo=BERLIN))  # 12, moderate
    await answered(*args, "questionnaire.phq-9", [1, 1, 1, 1, 0, 0, 0, 0, 0],
                   datetime(2026, 3, 13, 18, tzinfo=BERLIN))  # 4, minimal
    await answered(*args, "questionnaire.gad-7", [1, 1, 1, 1, 1, 1, 1],
                   datetime(2026, 3, 13, 18, 10, tzinfo=BERLIN))  # 7, mild
    practice.clock.set(datetime(2026, 3, 14, 9, tzinfo=BERLIN))
    return therapist, client_id


async def test_client_page_shows_scores_against_the_sessions(practice: Practice) -> None:
    """The client page charts each questionnaire with the medicine session marked, and names
    the latest total, the baseline, the change and the response and remission flags."""
    therapist, client_id = await _client_with_scores(practice)
    browser = await practice.signed_in(therapist)
    page = (await browser.get(f"/clients/{client_id}")).text
    measures = page.split('<section id="measures"')[1].split("</section>")[0]
    phq = measures.split('data-questionnaire="questionnaire.phq-9"')[1].split(
        'data-questionnaire="questionnaire.gad-7"')[0]
    gad = measures.split('data-questionnaire="questionnaire.gad-7"')[1]
    assert 'data-chart="scores-questionnaire-phq-9"' in phq
    assert "medicine session</text>" in phq
    assert phq.count('class="point score"') == 2
    assert "Latest <strong class=\"latest-score\">4</strong> (minimal)" in phq
    assert "baseline 18 (moderately severe)" in phq
    assert '<strong class="change">-14</strong> (-78%)' in phq
    assert 'data-flag="response">Response<' in phq
    assert 'data-flag="remission">Remission<' in phq
    assert '<strong class="change">-5</strong> (-42%)' in gad
    assert 'data-flag="response">No response yet<' in gad
    assert 'data-flag="remission">Not in remission<' in gad
    assert "Pfizer" in measures
    assert f'href="/clients/{client_id}/fhir.json"' in measures


async def test_scores_csv_and_fhir_downloads(practice: Practice) -> None:
    """The CSV has a row per questionnaire with change and flags; the FHIR download is an R4
    Bundle the R4 models accept; both reads are in the audit log."""
    therapist, client_id = await _client_with_scores(practice)
    browser = await practice.signed_in(therapist)
    answer = await browser.get(f"/clients/{client_id}/questionnaires.csv")
    assert answer.status_code == 200
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["questionnaire"], r["total"], r["change_from_baseline"], r["response"],
             r["remission"]) for r in rows] == [
        ("PHQ-9", "18", "0", "", "no"), ("GAD-7", "12", "0", "", "no"),
        ("PHQ-9", "4", "-14", "yes", "yes"), ("GAD-7", "7", "-5", "no", "no")]
    download = await browser.get(f"/clients/{client_id}/fhir.json")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/fhir+json")
    checked = validate_r4(download.json())
    assert checked["problems"] == []
    assert checked["types"].count("Observation") == 4
    async with practice.db.transaction() as session:
        details = list(await session.scalars(select(AuditEntry.detail).where(
            AuditEntry.client_id == client_id, AuditEntry.action == "exported")))
    assert details == ["questionnaires csv", "fhir"]


async def test_api_gives_trends_responses_and_the_bundle(practice: Practice) -> None:
    """GET /api/clients/{id}/questionnaires has each trend and every response with its
    answers; GET /api/clients/{id}/fhir the same Bundle as the download."""
    therapist, client_id = await _client_with_scores(practice)
    browser = await practice.signed_in(therapist)
    data = (await browser.api("GET", f"/api/clients/{client_id}/questionnaires")).json()
    phq = data["questionnaires"][0]
    assert (phq["title"], phq["range"], phq["change"], phq["response"], phq["remission"]) == (
        "PHQ-9", [0, 27], -14, True, True)
    assert [s["total"] for s in phq["scores"]] == [18, 4]
    assert len(data["medicine_sessions"]) == 1
    first = data["responses"][0]
    assert first["answers"][8] == {"item": 9, "text": first["answers"][8]["text"], "value": 0,
                                   "answer": "Not at all"}
    bundle = (await browser.api("GET", f"/api/clients/{client_id}/fhir")).json()
    assert bundle["resourceType"] == "Bundle"
    assert len(bundle["entry"]) == 9  # the patient, four responses, four totals
    async with practice.db.transaction() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(
            AuditEntry.client_id == client_id, AuditEntry.channel == "api")))
    assert actions == ["viewed_questionnaires", "exported"]


async def test_another_therapist_gets_nothing(practice: Practice) -> None:
    """Another therapist's page, CSV, FHIR and API answers are all 'not found'."""
    _therapist, client_id = await _client_with_scores(practice)
    other = await practice.signed_in(await practice.therapist("Dr B"))
    for url in (f"/clients/{client_id}/questionnaires.csv", f"/clients/{client_id}/fhir.json",
                f"/api/clients/{client_id}/questionnaires", f"/api/clients/{client_id}/fhir"):
        answer = await other.get(url)
        assert answer.status_code == 404, url
        assert "Robin" not in answer.text
        assert "PHQ" not in answer.text


async def test_the_library_previews_a_questionnaire_item_by_item(practice: Practice) -> None:
    """The PHQ-9's page shows the opening as the client gets it (with the note on item 9 and
    the four answers), every later item with its place, and the attribution."""
    browser = await practice.signed_in(await practice.therapist())
    page = (await browser.get("/library/prompts/questionnaire.phq-9")).text
    assert "PHQ-9 · 1 of 9" in page
    assert "your therapist reads your answer to question 9" in page
    assert page.count('class="kb-button"') == 4
    assert "PHQ-9 · 9 of 9" in page
    assert "Pfizer" in page
