"""Running the bot for real, or as the local demo (emulator + bot + demo data in one process)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from typing import TYPE_CHECKING

from bot.app import Runtime, build_runtime
from bot.clock import SystemClock
from bot.config import Settings
from bot.db.engine import open_database
from bot.db.migrate import upgrade
from bot.ingest.webhook import WebhookServer, derived_secret, path_of
from bot.library import load_library
from bot.services import review
from bot.web.app import DemoInfo

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)


def freeze_startup_heap() -> None:
    """Leave what start-up built (the libraries, the crisis classifier) out of every later
    garbage collection: a full collection walked all of it, stalling the event loop for a few
    tenths of a second twice in a 3,000-prompt dispatch, longer than the rate limiter can
    catch up. Garbage made until now is collected first, so nothing unreachable is kept."""
    gc.collect()
    gc.freeze()


async def serve_dashboard(runtime: Runtime, settings: Settings,
                          demo: DemoInfo | None = None) -> asyncio.Task[None] | None:
    """The dashboard and its API on INTERLUDE_WEB_HOST:INTERLUDE_WEB_PORT, on the bot's loop."""
    if settings.web_port == 0:
        return None
    import uvicorn

    from bot.web.app import WebContext, create_app
    from bot.web.security import secret_key

    services = runtime.services
    web = WebContext(db=services.db, library=services.library, clock=services.clock,
                     settings=settings, secret_key=secret_key(settings), planner=runtime.planner,
                     bot_username=runtime.application.bot.username, demo=demo)
    config = uvicorn.Config(create_app(web), host=settings.web_host, port=settings.web_port,
                            log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours stop it
    task = asyncio.create_task(_serve(server, settings), name="dashboard")
    log.info("dashboard on %s", settings.web_url)
    return task


async def _serve(server: uvicorn.Server, settings: Settings) -> None:
    """Serve until cancelled; a port already taken (another bot process on this machine, say)
    costs the dashboard, not the bot."""
    try:
        await server.serve()
    except SystemExit:  # uvicorn's answer to a port it cannot bind
        log.warning("dashboard not served: %s:%d is not free", settings.web_host, settings.web_port)


async def run_bot(settings: Settings, *, api_url: str | None = None,
                  demo: DemoInfo | None = None, webhook: str | None = None) -> None:
    """Migrate, start, and run until SIGINT or SIGTERM; shut down cleanly.

    With `webhook` (the public URL Telegram should POST to), the endpoint is served on
    INTERLUDE_WEBHOOK_LISTEN:INTERLUDE_WEBHOOK_PORT at that URL's path, and polling is off."""
    library = load_library(settings.prompts_dir)
    db = open_database(settings)
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
    freeze_startup_heap()
    log.info("bot @%s is running; %d prompts and %d programs loaded",
             runtime.application.bot.username, len(library.prompts), len(library.programs))
    dashboard = await serve_dashboard(runtime, settings, demo)
    try:
        waiter = asyncio.create_task(runtime.wait())
        stopper = asyncio.create_task(stop.wait())
        waiting = {waiter, stopper} | ({dashboard} if dashboard else set())
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, stopper):
            task.cancel()
    finally:
        if dashboard is not None:
            dashboard.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await dashboard
        await runtime.stop()
        if server is not None:
            await server.stop()
        await db.dispose()


async def seed_demo(settings: Settings) -> tuple[int, list[tuple[str, str]]]:
    """Demo data once (a therapist, clients to play, one with weeks of history); on later starts,
    fresh invite tokens for the clients nobody has played yet. Returns the therapist and
    (who, token) pairs for the welcome text."""
    from bot import demo

    library = load_library(settings.prompts_dir)
    db = open_database(settings)
    clock = SystemClock()
    try:
        await upgrade(db.engine)
        async with db.transaction() as session:
            existing = await review.therapists(session)
            if existing:
                therapist_id = existing[0].id
                return therapist_id, await demo.fresh_invites(session, therapist_id, clock, settings)
            return await demo.seed(session, clock, settings, library)
    finally:
        await db.dispose()


async def run_demo(settings: Settings, *, port: int) -> None:
    from bot import demo
    from bot.emulator.control import EmulatorControl
    from bot.emulator.runner import EmulatorThread

    emulator = EmulatorThread(port=port)
    emulator.start()
    try:
        therapist_id, links = await seed_demo(settings)
        async with EmulatorControl(emulator.url) as telegram:
            for name, telegram_id in demo.EMULATOR_PEOPLE:
                await telegram.create_user(name, "en", id=telegram_id)
        info = DemoInfo(chat_url=emulator.url, therapist_id=therapist_id, invites=links)
        print(_welcome(emulator.url, links, settings), flush=True)
        await run_bot(settings, api_url=emulator.url, demo=info)
    finally:
        emulator.stop()


def _welcome(url: str, links: list[tuple[str, str]], settings: Settings) -> str:
    lines = [
        "",
        "Interlude demo is running. No Telegram account is needed.",
    ]
    if settings.web_port:
        lines.append(f"  Demo page (chat and dashboard side by side):  {settings.web_url}/demo")
    lines += [
        f"  Chat page alone (you play the client):  {url}/",
        "",
    ]
    if links:
        lines.append("Open the chat page, create a person, and paste one of these invite tokens:")
        lines += [f"  {who}:  {token}" for who, token in links]
    else:
        lines.append("New invites: interlude client invite --therapist 1 --name 'A.' "
                     "--program evening-checkin")
    lines += [
        "",
        "In another terminal (same folder), as the therapist:",
        "  .venv/bin/interlude login-link 1     (a sign-in link for the dashboard)",
        "  .venv/bin/interlude client list",
        "  .venv/bin/interlude prompt send --client 1 --prompt <key>   (keys: interlude prompts list)",
        "  .venv/bin/interlude replies --client 1",
        "",
        f"Demo data lives in {settings.sqlalchemy_url.split('///')[-1]}. Press Ctrl+C to stop.",
    ]
    return "\n".join(lines)
