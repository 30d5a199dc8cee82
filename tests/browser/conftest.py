"""The whole product in a real headless Chromium: the emulator with its chat page, and the bot
with its dashboard and the demo's data in one process as `make run` starts them, on a clock the
tests move.

One browser and one server for the whole session; each test makes its own therapists and
clients. Chromium is Debian's (/usr/bin/chromium); without it these tests skip with a loud
message, and under CI they fail.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot import demo
from bot.app import Runtime, build_runtime
from bot.clock import FakeClock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.emulator.config import EmulatorConfig
from bot.emulator.control import EmulatorControl
from bot.emulator.runner import EmulatorThread
from bot.library import Library, load_library
from bot.runner import serve_dashboard
from bot.safety.screening import cached_screener
from bot.services import onboarding, signin
from bot.web.app import DemoInfo
from tests.conftest import ROOT, make_settings

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Live:
    """The running product: call `run(coroutine)` to act on its database from a test."""

    settings: Settings
    library: Library
    clock: FakeClock
    emulator: EmulatorThread
    loop: asyncio.AbstractEventLoop
    db: Database
    runtime: Runtime

    @property
    def url(self) -> str:
        return self.settings.web_url

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 20) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def therapist(self, name: str) -> int:
        async def work() -> int:
            async with self.db.transaction() as session:
                return (await onboarding.add_therapist(session, name, self.clock, self.settings)).id
        return self.run(work())

    def login_url(self, therapist_id: int) -> str:
        async def work() -> str:
            async with self.db.transaction() as session:
                return await signin.issue_link(session, therapist_id, self.clock,
                                               self.settings.login_link_minutes)
        return signin.login_url(self.url, self.run(work()))

    def control(self) -> EmulatorControl:
        return EmulatorControl(self.emulator.url)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live")
    config = EmulatorConfig(global_rate=1000, global_burst=1000, chat_rate=50, chat_burst=50)
    emulator = EmulatorThread(config).start()
    settings = make_settings(tmp, telegram_api_url=emulator.url, web_port=_free_port(),
                             dispatch_interval_seconds=0.2, rate_limit_per_chat=50,
                             rate_limit_chat_burst=50, web_secret_key="browser-test-key-0123456789")
    library = load_library(ROOT / "prompts")
    # The crisis classifier, trained here when this is the run's first bot (15 to 40 s on a busy
    # machine), so that the wait for the bot below is for starting it only.
    cached_screener(settings.prompts_dir / "safety.yaml", settings.cache_dir)
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    ready: dict[str, Any] = {}
    started, stopping = threading.Event(), None

    async def serve() -> None:
        nonlocal stopping
        stopping = asyncio.Event()
        db = Database.from_url(f"sqlite+aiosqlite:///{tmp / 'live.db'}")
        await upgrade(db.engine)
        async with db.transaction() as session:  # the demo's data, as `make run` seeds it
            therapist_id, invites = await demo.seed(session, clock, settings, library)
        async with EmulatorControl(emulator.url) as telegram:
            for name, telegram_id in demo.EMULATOR_PEOPLE:
                await telegram.create_user(name, "en", id=telegram_id)
        runtime = build_runtime(settings, db, library, clock, api_url=emulator.url)
        await runtime.start(poll=True, jobs=True)
        dashboard = await serve_dashboard(
            runtime, settings, DemoInfo(emulator.url, therapist_id, invites))
        assert dashboard is not None
        ready.update(db=db, runtime=runtime, loop=asyncio.get_running_loop())
        started.set()
        await stopping.wait()
        dashboard.cancel()
        await runtime.stop()
        await db.dispose()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="live-product", daemon=True)
    thread.start()
    assert started.wait(30), "the bot and dashboard did not start"
    live = Live(settings, library, clock, emulator, ready["loop"], ready["db"], ready["runtime"])
    _wait_for_port(settings.web_port)
    yield live
    live.loop.call_soon_threadsafe(stopping.set)  # type: ignore[union-attr]
    thread.join(10)
    emulator.stop()


def _wait_for_port(port: int) -> None:
    import time
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the dashboard did not start listening")


# Module scope, not session: Playwright's sync API runs an event loop in this thread while it
# is open, and the asyncio tests that come after the browser tests need the thread back.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = ("\n\n*** BROWSER TESTS NOT RUN: /usr/bin/chromium is missing. "
                   "Install it with: apt-get install -y chromium chromium-driver ***\n")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page, at a laptop's size."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
