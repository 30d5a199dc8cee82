"""Signing in by one-time link, sessions that end when idle, and signing out everywhere."""

from __future__ import annotations

from datetime import timedelta

import httpx

from bot.db.models import LoginLink
from bot.services import signin
from tests.web.conftest import Practice, csrf_of


async def refused_link(http: httpx.AsyncClient, token: str, why: str) -> None:
    """The link's page says why it no longer works, pressing it anyway fails, and no one is signed in."""
    page = await http.get(f"/login/{token}")
    assert page.status_code == 410
    assert why in page.text
    answer = await http.post(f"/login/{token}", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 410
    assert (await http.get("/clients")).status_code == 303


async def test_a_link_signs_in_once_and_only_its_hash_is_stored(practice: Practice) -> None:
    """The link's page offers a button; pressing it signs in; the same link then fails."""
    therapist = await practice.therapist()
    token = await practice.login_token(therapist)
    http = practice.browser()
    page = await http.get(f"/login/{token}")
    assert page.status_code == 200
    assert "Sign in as Dr Rivera" in page.text
    signed = await http.post(f"/login/{token}", data={"csrf": csrf_of(page.text)})
    assert signed.status_code == 303
    assert signed.headers["location"] == "/clients"
    assert (await http.get("/clients")).status_code == 200
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie

    await refused_link(practice.browser(), token, "already been used")
    async with practice.db.transaction() as session:
        from sqlalchemy import select
        stored = list(await session.scalars(select(LoginLink.token_hash)))
    assert stored
    assert token not in stored


async def test_an_expired_link_is_refused(practice: Practice) -> None:
    """A link older than ten minutes does not sign anyone in."""
    therapist = await practice.therapist()
    token = await practice.login_token(therapist)
    practice.clock.advance(minutes=10, seconds=1)
    await refused_link(practice.browser(), token, "expired")


async def test_a_session_ends_after_the_idle_time_but_not_while_used(practice: Practice) -> None:
    """Each request keeps the session alive; 15 minutes without one signs the therapist out."""
    therapist = await practice.therapist()
    browser = await practice.signed_in(therapist)
    for _ in range(4):
        practice.clock.advance(minutes=14)
        assert (await browser.get("/clients")).status_code == 200
    practice.clock.advance(minutes=15, seconds=1)
    answer = await browser.get("/clients")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin"
    assert (await browser.get("/api/session")).status_code == 401


async def test_sign_out_everywhere_ends_every_session(practice: Practice) -> None:
    """Signing out everywhere from one browser signs out the other too; a new link works."""
    therapist = await practice.therapist()
    laptop = await practice.signed_in(therapist)
    tablet = await practice.signed_in(therapist)
    assert (await tablet.get("/clients")).status_code == 200
    answer = await laptop.post_form("/signout/everywhere")
    assert answer.status_code == 200
    assert "signed out" in answer.text
    assert (await tablet.get("/clients")).status_code == 303
    assert (await laptop.get("/clients")).status_code == 303
    fresh = await practice.signed_in(therapist)
    assert (await fresh.get("/clients")).status_code == 200


async def test_signing_out_ends_this_session(practice: Practice) -> None:
    """Sign out forgets the session in this browser."""
    therapist = await practice.therapist()
    browser = await practice.signed_in(therapist)
    await browser.post_form("/signout")
    assert (await browser.get("/clients")).status_code == 303


async def test_links_are_unguessable_and_single_purpose(practice: Practice) -> None:
    """A made-up token is refused, and a therapist's Telegram link is not a sign-in link."""
    therapist = await practice.therapist()
    async with practice.db.transaction() as session:
        check = await signin.check_link(session, "not-a-token", practice.clock)
    assert check.state is signin.LinkState.UNKNOWN
    http = practice.browser()
    assert (await http.get("/login/t_abcdefabcdef")).status_code == 410
    async with practice.db.transaction() as session:
        first = await signin.issue_link(session, therapist, practice.clock, 10)
        second = await signin.issue_link(session, therapist, practice.clock, 10)
    assert first != second
    assert len(first) >= 24
    practice.clock.advance(timedelta(minutes=1))


async def test_a_busy_session_still_ends_after_twelve_hours(practice: Practice) -> None:
    """Keeping a session busy does not keep it forever: twelve hours after sign-in it ends."""
    therapist = await practice.therapist()
    browser = await practice.signed_in(therapist)
    for _ in range(12 * 6):  # every ten minutes, for twelve hours
        practice.clock.advance(minutes=10)
        assert (await browser.get("/api/session")).status_code == 200
    practice.clock.advance(minutes=1)
    assert (await browser.get("/api/session")).status_code == 401
    assert (await browser.get("/clients")).status_code == 303


async def test_acknowledging_never_redirects_off_the_site(practice: Practice) -> None:
    """The page to return to after acknowledging an alert is a path here, or /alerts."""
    from tests.web.helpers import history

    therapist = await practice.therapist()
    robin = await practice.client(therapist, "Robin")
    ids = await history(practice, robin, days=1)
    browser = await practice.signed_in(therapist)
    answer = await browser.post_form(f"/alerts/{ids['alert']}/ack", {"next": "/\\\\evil.example"})
    assert answer.headers["location"] == "/alerts"
