"""The demo chat page: served at /, self-contained, and every control labelled."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from bot.emulator import EmulatorThread


class PageOutline(HTMLParser):
    """What the page links to, which controls it has, and which labels point where."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.controls: list[dict[str, str | None]] = []
        self.labelled: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.assets.append(str(found["src"]))
        if tag == "link" and found.get("rel") == "stylesheet":
            self.assets.append(str(found["href"]))
        if tag in ("input", "select", "textarea"):
            self.controls.append(found)
        if tag == "label" and found.get("for"):
            self.labelled.add(str(found["for"]))


@pytest.fixture
async def page(emulator: EmulatorThread) -> tuple[httpx.Response, PageOutline]:
    async with httpx.AsyncClient(base_url=emulator.url) as client:
        response = await client.get("/")
    outline = PageOutline()
    outline.feed(response.text)
    return response, outline


async def test_the_chat_page_is_served_at_the_root(
    page: tuple[httpx.Response, PageOutline],
) -> None:
    """GET / is the chat page, with the invite-link field a person needs first."""
    response, _ = page
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Open an invite link" in response.text


async def test_every_asset_loads_from_the_emulator_itself(
    emulator: EmulatorThread, page: tuple[httpx.Response, PageOutline]
) -> None:
    """The page's scripts and styles come from /static and load; nothing from elsewhere."""
    _, outline = page
    assert sorted(outline.assets) == ["/static/chat.css", "/static/chat.js"]
    async with httpx.AsyncClient(base_url=emulator.url) as client:
        for asset in outline.assets:
            response = await client.get(asset)
            assert response.status_code == 200, asset
            assert response.content
    assert not re.search(r"https?://(?!t\.me/|example\.)", page[0].text)


async def test_every_control_has_a_label(page: tuple[httpx.Response, PageOutline]) -> None:
    """Each input, select and textarea has a <label for> naming it, for screen readers."""
    _, outline = page
    assert outline.controls
    unlabelled = [c.get("id") for c in outline.controls if c.get("id") not in outline.labelled]
    assert unlabelled == []


async def test_the_script_talks_only_to_the_control_api(emulator: EmulatorThread) -> None:
    """The page's script reaches the emulator through /emulator/ paths only."""
    async with httpx.AsyncClient(base_url=emulator.url) as client:
        script = (await client.get("/static/chat.js")).text
    paths = set(re.findall(r"[\"`](/[a-z]+)/", script))
    assert paths <= {"/emulator"}
