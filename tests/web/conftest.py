"""The dashboard and API in the test's event loop: real app, real SQLite, real HTTP semantics
(httpx over ASGI, cookies kept), a clock we move."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.models import Client, ClientStatus
from bot.library import Library
from bot.services import onboarding, signin
from bot.web.app import WebContext, create_app


@dataclass
class Practice:
    """A practice with a web app: make therapists and clients, and sign browsers in."""

    db: Database
    settings: Settings
    library: Library
    clock: FakeClock
    web: WebContext
    app: Any

    async def therapist(self, name: str = "Dr Rivera") -> int:
        async with self.db.transaction() as session:
            return (await onboarding.add_therapist(session, name, self.clock, self.settings)).id

    async def client(self, therapist_id: int, name: str = "Sam", *, program: str | None = None,
                     anchor: datetime | None = None, joined: bool = True,
                     telegram_user_id: int | None = None) -> int:
        """A client, invited and (by default) agreed, with the time zone confirmed."""
        async with self.db.transaction() as session:
            issued = await onboarding.invite_client(
                session, therapist_id=therapist_id, name=name, clock=self.clock,
                settings=self.settings, library=self.library, program=program, anchor=anchor,
                timezone="Europe/Berlin")
            if joined:
                user_id = telegram_user_id or 700_000 + issued.id
                await onboarding.give_consent(session, issued.token, user_id, "en", self.clock,
                                              self.settings, self.library)
                client = await session.get(Client, issued.id)
                assert client is not None
                assert client.status is ClientStatus.ACTIVE
                client.timezone = "Europe/Berlin"
        return issued.id

    async def login_token(self, therapist_id: int) -> str:
        async with self.db.transaction() as session:
            return await signin.issue_link(session, therapist_id, self.clock,
                                           self.settings.login_link_minutes)

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url="http://127.0.0.1:8000", follow_redirects=False)

    async def signed_in(self, therapist_id: int) -> Browser:
        http = self.browser()
        browser = Browser(http)
        token = await self.login_token(therapist_id)
        page = await http.get(f"/login/{token}")
        assert page.status_code == 200
        answer = await http.post(f"/login/{token}", data={"csrf": csrf_of(page.text)})
        assert answer.status_code == 303, answer.text
        await browser.refresh_csrf()
        return browser


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


@dataclass
class Browser:
    http: httpx.AsyncClient
    csrf: str = ""

    async def refresh_csrf(self) -> None:
        self.csrf = (await self.http.get("/api/session")).json()["csrf_token"]

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(url, **kwargs)

    async def post_form(self, url: str, data: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post(url, data={"csrf": self.csrf, **(data or {})})

    async def api(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf} if method != "GET" else {}
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def practice(db: Database, settings: Settings, library: Library,
                   clock: FakeClock) -> AsyncIterator[Practice]:
    web = WebContext(db=db, library=library, clock=clock, settings=settings,
                     secret_key="test-secret-key-0123456789")
    return Practice(db, settings, library, clock, web, create_app(web))
