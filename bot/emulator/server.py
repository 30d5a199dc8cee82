"""The emulator's HTTP face: the Bot API at /bot{token}/{method} and file downloads at
/file/bot{token}/{path}, as python-telegram-bot calls them; the control API at
/emulator/...; and the demo chat page at /.

`create_app` builds one emulated Telegram per app. The spec is indexed once here,
never per request.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.clock import Clock, SystemClock
from bot.emulator.botapi import ApiError, load_spec
from bot.emulator.config import EmulatorConfig
from bot.emulator.control_routes import control_routes
from bot.emulator.forms import read_parameters
from bot.emulator.methods import BotApi
from bot.emulator.world import TelegramWorld

STATIC_DIR = Path(__file__).parent / "static"

_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
_NOT_FOUND = ApiError(404, "Not Found")


def create_app(config: EmulatorConfig | None = None, *, clock: Clock | None = None) -> Starlette:
    """A Starlette app that is one emulated Telegram with one bot.

    `clock` sets message dates (a FakeClock lets tests move time); the rate limits
    always run on the monotonic clock.
    """
    config = config or EmulatorConfig()
    startup_config = config.copy()
    spec = load_spec()
    world = TelegramWorld(config, clock or SystemClock())
    api = BotApi(world, spec)

    async def bot_api(request: Request) -> Response:
        token = request.path_params["token"]
        method = spec.method_name(request.path_params["method"])
        if method is None or not _TOKEN.fullmatch(token):
            world.stats.errors[404] += 1
            return _error(_NOT_FOUND)
        world.use_token(token)
        world.stats.methods[method] += 1
        try:
            raw = await read_parameters(request)
            result = await api.call(method, raw)
        except ApiError as error:
            world.stats.errors[error.code] += 1
            return _error(error)
        return _json({"ok": True, "result": result})

    async def download(request: Request) -> Response:
        if not _TOKEN.fullmatch(request.path_params["token"]):
            return _error(_NOT_FOUND)
        stored = world.files_by_path.get(request.path_params["file_path"])
        if stored is None:
            return _error(_NOT_FOUND)
        return Response(stored.content(), media_type="application/octet-stream")

    async def chat_page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        world.close()

    routes = [
        Route("/bot{token}/{method}", bot_api, methods=["GET", "POST"]),
        Route("/file/bot{token}/{file_path:path}", download, methods=["GET"]),
        *control_routes(world, api, startup_config),
        Route("/", chat_page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.world = world
    app.state.api = api
    return app


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        status_code=status,
        media_type="application/json",
    )


def _error(error: ApiError) -> Response:
    return _json(error.as_json(), error.code)
