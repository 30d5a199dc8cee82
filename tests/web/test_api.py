"""The JSON API: every route does for a practice's tools what the dashboard does for a person,
described in OpenAPI. (Other therapists and missing sessions: tests/web/test_access.py.)"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.web.conftest import Practice
from tests.web.helpers import history


async def test_the_openapi_description_lists_every_api_route(practice: Practice) -> None:
    """/api/openapi.json describes each /api route and no page."""
    spec = (await practice.browser().get("/api/openapi.json")).json()
    paths = set(spec["paths"])
    assert {"/api/session", "/api/clients", "/api/clients/{client_id}",
            "/api/clients/{client_id}/timeline", "/api/clients/{client_id}/trends",
            "/api/clients/{client_id}/upcoming", "/api/clients/{client_id}/enrolments",
            "/api/clients/{client_id}/enrolments/{enrolment_id}", "/api/clients/{client_id}/prompts",
            "/api/clients/{client_id}/recurring", "/api/clients/{client_id}/pause",
            "/api/clients/{client_id}/resume", "/api/clients/{client_id}/medicine-sessions",
            "/api/alerts", "/api/alerts/{alert_id}/ack", "/api/library/prompts",
            "/api/library/programs", "/api/audit"} <= paths
    assert all(p.startswith("/api/") for p in paths)
    assert spec["components"]["schemas"]["ClientOut"]["properties"]["answer_rate_14d"]


async def test_reading_a_practice_through_the_api(practice: Practice) -> None:
    """Clients, one client, the timeline, trends, next prompts, alerts, library and audit."""
    therapist = await practice.therapist()
    robin = await practice.client(therapist, "Robin", program="evening-checkin")
    ids = await history(practice, robin, days=5, words="Softer shoulders.")
    api = await practice.signed_in(therapist)
    clients = (await api.get("/api/clients")).json()
    assert [(c["name"], c["status"], c["open_alerts"]) for c in clients] == [("Robin", "active", 1)]
    assert clients[0]["answer_rate_14d"] == round(5 / 6, 3)
    detail = (await api.get(f"/api/clients/{robin}")).json()
    assert detail["enrolments"][0]["program_key"] == "evening-checkin"
    timeline = (await api.get(f"/api/clients/{robin}/timeline")).json()
    assert any(a["text"] == "Softer shoulders." for e in timeline for a in e["answers"])
    assert timeline[0]["prompt_text"] == practice.library.prompts["checkin.now"].text
    since = (await api.get(f"/api/clients/{robin}/timeline",
                           params={"from": "2026-03-01T00:00:00+00:00"})).json()
    assert 0 < len(since) < len(timeline)
    trends = (await api.get(f"/api/clients/{robin}/trends", params={"days": 14})).json()
    assert len(trends["checkins"]) == 5
    assert len(trends["answer_rate_by_week"]) == 2
    upcoming = (await api.get(f"/api/clients/{robin}/upcoming", params={"limit": 3})).json()
    assert [u["local"][11:16] for u in upcoming] == ["20:00"] * 3
    alerts = (await api.get("/api/alerts", params={"open": "true"})).json()
    assert [a["id"] for a in alerts] == [ids["alert"]]
    assert len((await api.get("/api/library/prompts")).json()) == len(practice.library.prompts)
    assert {p["key"] for p in (await api.get("/api/library/programs")).json()} == set(
        practice.library.programs)
    actions = {e["action"] for e in (await api.get("/api/audit")).json()}
    assert {"viewed_client", "viewed_timeline", "viewed_trends"} <= actions
    assert all(e["channel"] == "api" for e in (await api.get("/api/audit")).json()
               if e["action"] == "viewed_timeline")


async def test_changing_a_schedule_through_the_api(practice: Practice) -> None:
    """Invite, enrol, send now, add a recurring prompt, pause and resume, record a session,
    end a program, acknowledge an alert: each answers with what it made and shows up."""
    therapist = await practice.therapist()
    api = await practice.signed_in(therapist)
    made = await api.api("POST", "/api/clients", json={"name": "Ash", "timezone": "Europe/Berlin"})
    assert made.status_code == 201
    assert made.json()["link"].startswith("https://t.me/")
    robin = await practice.client(therapist, "Robin")
    ids = await history(practice, robin, days=1)
    enrolled = await api.api("POST", f"/api/clients/{robin}/enrolments", json={
        "program": "integration-7day", "anchor": "2026-03-01T10:00:00+01:00"})
    assert enrolled.status_code == 201
    bad = await api.api("POST", f"/api/clients/{robin}/enrolments", json={"program": "integration-7day"})
    assert bad.status_code == 400
    assert "medicine session" in bad.json()["detail"]
    sent = await api.api("POST", f"/api/clients/{robin}/prompts", json={"text": "One breath, now."})
    assert sent.status_code == 201
    recurring = await api.api("POST", f"/api/clients/{robin}/recurring",
                              json={"prompt_key": "checkin.now", "at": "12:00", "days": ["wed"]})
    assert recurring.status_code == 201
    upcoming = (await api.get(f"/api/clients/{robin}/upcoming", params={"limit": 50})).json()
    assert any(u["text"] == "One breath, now." for u in upcoming)
    assert any(u["local"].startswith("2026-03-04T12:00") for u in upcoming)
    assert (await api.api("POST", f"/api/clients/{robin}/pause", json={"days": 3})).status_code == 200
    assert (await api.get(f"/api/clients/{robin}")).json()["status"] == "paused"
    assert (await api.api("POST", f"/api/clients/{robin}/resume")).status_code == 200
    assert (await api.get(f"/api/clients/{robin}")).json()["status"] == "active"
    moved = await api.api("POST", f"/api/clients/{robin}/medicine-sessions",
                          json={"at": "2026-03-09T10:00:00+01:00"})
    assert moved.status_code == 201
    detail = (await api.get(f"/api/clients/{robin}")).json()
    integration = [e for e in detail["enrolments"] if e["program_key"] == "integration-7day"]
    assert [e["anchor_at"] for e in integration] == ["2026-03-09T09:00:00Z"]
    assert datetime(2026, 3, 9, 9, tzinfo=UTC).isoformat().replace("+00:00", "Z") in \
        detail["medicine_sessions"]
    ended = await api.api("DELETE", f"/api/clients/{robin}/enrolments/{integration[0]['id']}")
    assert ended.status_code == 200
    assert all(e["program_key"] != "integration-7day"
               for e in (await api.get(f"/api/clients/{robin}")).json()["enrolments"])
    assert (await api.api("POST", f"/api/alerts/{ids['alert']}/ack")).status_code == 200
    assert (await api.get("/api/alerts", params={"open": "true"})).json() == []


async def test_invalid_input_is_named_without_echoing_it(practice: Practice) -> None:
    """A malformed body gets 422 with the field names only, never the values sent."""
    therapist = await practice.therapist()
    robin = await practice.client(therapist, "Robin")
    api = await practice.signed_in(therapist)
    answer = await api.api("POST", f"/api/clients/{robin}/pause", json={"days": "secret-words"})
    assert answer.status_code == 422
    assert answer.json()["fields"] == ["days"]
    assert "secret-words" not in answer.text
