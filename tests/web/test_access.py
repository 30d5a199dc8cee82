"""A therapist only ever sees their own clients, on every page and API route; no route opens
without a session; no change goes through without the CSRF token.

The routes are read from the app itself, so a route added later is walked too.
"""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from bot.db.models import Enrolment
from tests.web.conftest import Practice
from tests.web.couple_helpers import linked_couple
from tests.web.helpers import history

# Reachable without a session, and why.
PUBLIC = {
    "/signin": "the sign-in page",
    "/login/{token}": "a sign-in link (the token is the credential)",
    "/signout": "signing out needs no session",
    "/api/openapi.json": "the API's description holds no client data",
    "/demo": "the demo page (only in the demo)",
    "/demo/signin": "the demo's sign-in (only in the demo)",
    "/": "a redirect to /clients, which asks for a session",
}
# A valid body for each API action, so a refusal is about ownership, not a malformed request.
API_BODIES = {
    "enrolments": {"program": "evening-checkin"},
    "prompts": {"prompt_key": "checkin.now"},
    "recurring": {"prompt_key": "checkin.now", "at": "19:00"},
    "pause": {"days": 3},
    "medicine-sessions": {"at": "2026-03-05T10:00:00+01:00"},
    "thresholds": {"intensity": 8},
}
# Parameters that name shared things, not a client's: open to any signed-in therapist.
SHARED_PARAMS = {"key"}


def _walk(routes: list[object]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # FastAPI keeps included routers as a branch
            found += _walk(route.original_router.routes)
    return found


def routes(app: object) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, however FastAPI nests included routers."""
    return [(method, route.path) for route in _walk(app.routes)  # type: ignore[attr-defined]
            for method in sorted(route.methods)]


async def _fixture(practice: Practice) -> tuple[dict[str, str], int, int]:
    a = await practice.therapist("Dr A")
    b = await practice.therapist("Dr B")
    client = await practice.client(a, "Robin", program="evening-checkin")
    ids = await history(practice, client)
    async with practice.db.transaction() as session:
        from sqlalchemy import select
        enrolment = await session.scalar(select(Enrolment.id).where(Enrolment.client_id == client))
    # A's couple: Robin's partner is the second; its pages name both.
    couple, _robin, _partner = await linked_couple(practice, a, "Robin Pair", "Jules")
    values = {"client_id": str(client), "reply_id": str(ids["voice"]),
              "alert_id": str(ids["alert"]), "enrolment_id": str(enrolment),
              "delivery_id": str(ids["delivery"]), "couple_id": str(couple),
              "key": "checkin.now", "token": "x"}
    return values, a, b


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], path)


async def test_another_therapists_client_is_refused_on_every_route(practice: Practice) -> None:
    """Therapist B, signed in with a valid CSRF token, gets 403 or 404 from every route that
    names therapist A's client, alert, reply or enrolment, and A's data never appears."""
    values, _a, b = await _fixture(practice)
    browser = await practice.signed_in(b)
    walked = couple_routes = 0
    for method, path in routes(practice.app):
        params = set(re.findall(r"\{(\w+)", path))
        if not params or params <= SHARED_PARAMS or path in PUBLIC:
            continue
        url = fill(path, values)
        if method == "GET":
            answer = await browser.get(url, params={"program": "evening-checkin"})
        elif path.startswith("/api/"):
            body = API_BODIES.get(path.rsplit("/", 1)[-1], {})
            answer = await browser.api(method, url, json=body)
        else:
            answer = await browser.post_form(url, {"name": "x", "program": "evening-checkin",
                                                   "prompt_key": "checkin.now",
                                                   "at": "2026-03-05T10:00",
                                                   "anchor": "2026-03-05T10:00"})
        assert answer.status_code in (403, 404), f"{method} {path}: {answer.status_code}"
        assert "Robin" not in answer.text, f"{method} {path} showed A's client"
        assert "Jules" not in answer.text, f"{method} {path} showed A's couple"
        walked += 1
        couple_routes += "{couple_id}" in path
    assert walked >= 15  # the walk reached the client routes, not an empty list
    assert couple_routes >= 6  # and the couple's page, its forms and its API routes


async def test_every_route_but_the_public_ones_needs_a_session(practice: Practice) -> None:
    """Without signing in, pages send the browser to /signin and the API answers 401."""
    values, _a, _b = await _fixture(practice)
    http = practice.browser()
    page = await http.get("/signin")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    token = csrf.group(1) if csrf else ""
    checked = 0
    for method, path in routes(practice.app):
        if path in PUBLIC:
            continue
        url = fill(path, values)
        # With the pre-session CSRF token, so the refusal is about the session, not the token.
        answer = await http.request(method, url, data={"csrf": token},
                                    headers={"X-CSRF-Token": token})
        if path.startswith("/api/"):
            assert answer.status_code == 401, f"{method} {path}: {answer.status_code}"
        else:
            assert answer.status_code == 303, f"{method} {path}: {answer.status_code}"
            assert answer.headers["location"] == "/signin"
        assert "Robin" not in answer.text
        checked += 1
    assert checked >= 25


async def test_every_change_without_the_csrf_token_is_refused(practice: Practice) -> None:
    """Every POST, PUT and DELETE, page or API, is refused with 403 without the session's
    CSRF token, and with someone else's, even for a signed-in therapist on their own client."""
    values, a, _b = await _fixture(practice)
    browser = await practice.signed_in(a)
    checked = 0
    for method, path in routes(practice.app):
        if method in ("GET", "HEAD"):
            continue
        url = fill(path, values)
        missing = await browser.http.request(method, url, data={"name": "x"})
        wrong = await browser.http.request(method, url, data={"csrf": "forged"},
                                           headers={"X-CSRF-Token": "forged"})
        assert missing.status_code == 403, f"{method} {path}: {missing.status_code}"
        assert wrong.status_code == 403, f"{method} {path}: {wrong.status_code}"
        checked += 1
    assert checked >= 10
    # And nothing changed: the client is still active and not paused.
    summary = (await browser.get(f"/clients/{values['client_id']}")).text
    assert "Paused" not in summary.split("<nav class=\"in-page\"")[0]
