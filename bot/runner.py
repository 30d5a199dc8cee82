"""Running the bot for real, or as the local demo (emulator + bot + demo data in one process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta

from bot.app import build_runtime
from bot.clock import SystemClock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.ingest.webhook import WebhookServer, derived_secret, path_of
from bot.library import load_library
from bot.services import onboarding, review

log = logging.getLogger(__name__)


async def run_bot(settings: Settings, *, api_url: str | None = None,
                  webhook: str | None = None) -> None:
    """Migrate, start, and run until SIGINT or SIGTERM; shut down cleanly.

    With `webhook` (the public URL Telegram should POST to), the endpoint is served on
    INTERLUDE_WEBHOOK_LISTEN:INTERLUDE_WEBHOOK_PORT at that URL's path, and polling is off."""
    library = load_library(settings.prompts_dir)
    db = Database.from_url(settings.sqlalchemy_url)
    await upgrade(db.engine)
    runtime = build_runtime(settings, db, library, SystemClock(), api_url=api_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    server = None
    if webhook is not None:
        secret = (settings.webhook_secret.get_secret_value() if settings.webhook_secret
                  else derived_secret(runtime.application.bot.token))
        server = WebhookServer(runtime.webhook_routes(secret, path_of(webhook)),
                               settings.webhook_listen, settings.webhook_port)
        await server.start()
        await runtime.start(webhook=webhook, secret=secret)
        log.info("webhook endpoint listening on %s:%d", settings.webhook_listen, server.port)
    else:
        await runtime.start()
    log.info("bot @%s is running; %d prompts and %d programs loaded",
             runtime.application.bot.username, len(library.prompts), len(library.programs))
    try:
        waiter = asyncio.create_task(runtime.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, stopper):
            task.cancel()
    finally:
        await runtime.stop()
        if server is not None:
            await server.stop()
        await db.dispose()


async def seed_demo(settings: Settings) -> list[tuple[str, str]]:
    """A demo therapist and two invites, once; returns (who, link) for the welcome text."""
    library = load_library(settings.prompts_dir)
    db = Database.from_url(settings.sqlalchemy_url)
    clock = SystemClock()
    links: list[tuple[str, str]] = []
    try:
        await upgrade(db.engine)
        async with db.transaction() as session:
            if await review.therapists(session):
                return links
            therapist = await onboarding.add_therapist(session, "Dr Rivera", clock, settings)
            evening = await onboarding.invite_client(
                session, therapist_id=therapist.id, name="Sam", clock=clock, settings=settings,
                library=library, program="evening-checkin", timezone=settings.default_timezone)
            integration = await onboarding.invite_client(
                session, therapist_id=therapist.id, name="Alex", clock=clock, settings=settings,
                library=library, program="integration-7day",
                anchor=clock.now() - timedelta(hours=20), timezone=settings.default_timezone)
        links = [("Sam (daily evening check-in)", evening.token),
                 ("Alex (7 days of integration after a medicine session yesterday)",
                  integration.token)]
    finally:
        await db.dispose()
    return links


async def run_demo(settings: Settings, *, port: int) -> None:
    from bot.emulator.runner import EmulatorThread

    emulator = EmulatorThread(port=port)
    emulator.start()
    try:
        links = await seed_demo(settings)
        print(_welcome(emulator.url, links, settings), flush=True)
        await run_bot(settings, api_url=emulator.url)
    finally:
        emulator.stop()


def _welcome(url: str, links: list[tuple[str, str]], settings: Settings) -> str:
    lines = [
        "",
        "Interlude demo is running. No Telegram account is needed.",
        f"  Chat page (you play the client):  {url}/",
        "",
    ]
    if links:
        lines.append("Open the chat page, create a person, and paste one of these invite tokens:")
        lines += [f"  {who}:  {token}" for who, token in links]
    else:
        lines.append("Demo data already exists. New invites: "
                     "interlude client invite --therapist 1 --name 'A.' --program evening-checkin")
    lines += [
        "",
        "In another terminal (same folder), as the therapist:",
        "  .venv/bin/interlude client list",
        "  .venv/bin/interlude prompt send --client 1 --prompt <key>   (keys: interlude prompts list)",
        "  .venv/bin/interlude replies --client 1",
        "",
        f"Demo data lives in {settings.sqlalchemy_url.split('///')[-1]}. Press Ctrl+C to stop.",
    ]
    return "\n".join(lines)
