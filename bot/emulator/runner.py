"""Running the emulator: in a background thread for tests and benchmarks
(`EmulatorThread`), or in the foreground for `interlude emulator --port 8081`
(`run_emulator`).

uvicorn's access log stays off: the emulator never writes message text, or paths
that could carry it, to a log.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from bot.clock import Clock
from bot.emulator.config import EmulatorConfig
from bot.emulator.server import create_app

STARTUP_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0


class ServerThread:
    """Any ASGI app served by uvicorn on a background thread, on a free port by default.

    Tests use it for the emulator and for small receivers (a bot's webhook).
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        """Start serving; returns once the server accepts connections."""
        # IPPROTO_TCP spelled out: asyncio turns on TCP_NODELAY only for sockets that
        # say so, and without it every answer waits ~40 ms for a delayed ACK.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        self.port = listener.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server

        def serve() -> None:
            asyncio.run(self._serve(server, listener))

        self._thread = threading.Thread(target=serve, name=f"uvicorn:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server on {self.url} stopped while starting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start in time")
            time.sleep(0.005)
        return self

    async def _serve(self, server: uvicorn.Server, listener: socket.socket) -> None:
        self.loop = asyncio.get_running_loop()
        await server.serve(sockets=[listener])

    def before_stop(self) -> None:
        """Called on the server's loop just before it stops; subclasses let requests go."""

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.before_stop)
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_SECONDS)
        self._server = None
        self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class EmulatorThread(ServerThread):
    """The emulator on a background thread: `with EmulatorThread() as emulator: emulator.url`."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.starlette: Starlette = create_app(config, clock=clock)
        super().__init__(self.starlette, host, port)

    def before_stop(self) -> None:
        # Long polls would otherwise hold the server open until their timeout.
        self.starlette.state.world.close()

    def __enter__(self) -> EmulatorThread:
        self.start()
        return self


def run_emulator(host: str, port: int, config: EmulatorConfig | None = None) -> None:
    """Serve the emulator in the foreground until interrupted."""
    app = create_app(config)
    # The one line a person starting the emulator needs.
    print(
        f"Telegram Bot API emulator on http://{host}:{port} "
        f"(bot base_url http://{host}:{port}/bot; chat page at http://{host}:{port}/)",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
