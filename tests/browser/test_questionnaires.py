"""Questionnaire scores on the client page in a real browser: the chart drawn with its points
and the medicine session, the flags, and the FHIR Bundle downloaded."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock
from bot.db.models import Client
from bot.services import schedules
from tests.browser.conftest import Live, screenshot
from tests.browser.test_dashboard import joined_client, sign_in
from tests.measures_helpers import answered

pytestmark = pytest.mark.browser
BERLIN = ZoneInfo("Europe/Berlin")


def _scores(live: Live, client_id: int, therapist_id: int) -> None:
    """A month of PHQ-9 and GAD-7 around a session, answered on a clock of their own (the
    product's clock stays where the other tests expect it)."""
    own = FakeClock(datetime(2026, 2, 2, 18, tzinfo=BERLIN))
    args = (live.db, live.library, live.settings, own, client_id)

    async def work() -> None:
        async with live.db.transaction() as session:
            client = await session.get(Client, client_id)
            assert client is not None
            await schedules.record_medicine_session(
                session, client, datetime(2026, 2, 9, 10, tzinfo=BERLIN), live.library, own,
                therapist_id=therapist_id, reanchor=False)
        for day, phq, gad in ((2, [3, 2, 2, 2, 2, 2, 2, 1, 0], [2, 2, 2, 2, 1, 1, 1]),
                              (10, [2, 2, 1, 1, 1, 1, 1, 1, 0], [2, 1, 1, 1, 1, 1, 1]),
                              (16, [1, 1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0]),
                              (27, [1, 1, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0])):
            await answered(*args, "questionnaire.phq-9", phq, datetime(2026, 2, day, 18, tzinfo=BERLIN))
            await answered(*args, "questionnaire.gad-7", gad,
                           datetime(2026, 2, day, 18, 10, tzinfo=BERLIN))

    live.run(work())


def test_the_score_chart_renders_on_the_client_page(page: Any, live: Live) -> None:
    """Both questionnaires are charted with every total and the medicine session, the flags
    read response and remission, and the FHIR download is a Bundle."""
    therapist = live.therapist("Dr Measures")
    client_id = joined_client(live, therapist, "Ines")
    _scores(live, client_id, therapist)
    sign_in(page, live, therapist)
    page.goto(f"{live.url}/clients/{client_id}#measures")
    chart = page.locator('svg[data-chart="scores-questionnaire-phq-9"]')
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 500
    assert box["height"] > 150
    assert chart.locator("circle.point.score").count() == 4
    assert chart.locator(".session").count() == 1
    assert "baseline 16, latest 2 (minimal)" in (chart.locator("desc").text_content() or "")
    assert page.locator('svg[data-chart="scores-questionnaire-gad-7"] circle.point.score').count() == 4
    phq = page.locator('[data-questionnaire="questionnaire.phq-9"]')
    assert phq.locator('[data-flag="response"]').inner_text() == "Response"
    assert phq.locator('[data-flag="remission"]').inner_text() == "Remission"
    assert phq.locator(".change").inner_text() == "-14"
    screenshot(page, "13-questionnaire-scores")

    with page.expect_download() as download:
        page.locator("#measures").get_by_role("link", name="FHIR R4 Bundle").click()
    bundle = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle"
    assert len(bundle["entry"]) == 17  # the patient, eight responses, eight totals
