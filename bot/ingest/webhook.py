"""The webhook: Telegram POSTs each update here; it is stored in the inbox before we answer.

The other entry of the inbound path (DESIGN.md: webhook -> inbox). A request without the
secret header Telegram was given is refused (compared in constant time); an update is
answered 200 only after its inbox row is committed, so a crash or a database error (500)
means Telegram sends it again, and the inbox keeps it once. Handling is not done here: the
process that leads the inbox (bot/ingest/leader.py) handles what every process stored, in
order, so several processes can serve this endpoint behind a proxy.

`webhook_routes` returns Starlette routes that any ASGI app can mount (the dashboard's too).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.ingest.inbox import Inbox

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
DEFAULT_PATH = "/telegram/webhook"
MAX_BODY_BYTES = 1_000_000  # an update is a few kilobytes; anything this big is not Telegram


def derived_secret(token: str) -> str:
    """The secret header value when none is configured: the same in every process of one bot,
    unguessable without the token, and only letters and digits as Telegram requires."""
    return hmac.new(token.encode(), b"interlude webhook", hashlib.sha256).hexdigest()


def path_of(url: str) -> str:
    return urlsplit(url).path or DEFAULT_PATH


def webhook_routes(inbox: Inbox, secret: str, path: str = DEFAULT_PATH,
                   on_stored: Callable[[], None] | None = None) -> list[Route]:
    """The webhook endpoint as routes to mount; `on_stored` wakes this process's handler."""
    expected = secret.encode()

    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return Response(status_code=403)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return Response(status_code=413)
        try:
            update = json.loads(body)
            valid = isinstance(update, dict) and isinstance(update.get("update_id"), int)
        except ValueError:
            valid = False
        if not valid:
            # Telegram would send the same thing again; a 400 tells it to, and we log nothing
            # of the body.
            return Response(status_code=400)
        try:
            await inbox.store([update])
        except Exception as error:
            log.warning("could not store update %d (%s); Telegram will send it again",
                        update["update_id"], type(error).__name__)
            return Response(status_code=500)
        if on_stored is not None:
            on_stored()
        return Response(status_code=200)

    return [Route(path, receive, methods=["POST"])]


class WebhookServer:
    """The webhook endpoint served by uvicorn in this event loop (`interlude run --webhook`)."""

    def __init__(self, routes: list[Route], host: str, port: int) -> None:
        config = uvicorn.Config(Starlette(routes=routes), host=host, port=port,
                                log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None
        self.host, self.port = host, port

    async def start(self) -> None:
        # Bound here, so that a port already in use fails the start rather than a task later.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        self.port = listener.getsockname()[1]
        self._server.config.port = self.port
        # Signals stay with the bot's own handlers (bot/runner.py), not uvicorn's.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve(sockets=[listener]),
                                         name="webhook-server")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what stopped it
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, timeout=5)
        self._task = None
