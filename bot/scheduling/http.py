"""How the bot's requests reach the Bot API: python-telegram-bot's request interface over aiohttp.

Every request the bot makes (prompts, replies, files) goes this way; polling keeps
python-telegram-bot's own HTTPX request. The reason is CPU at Telegram's higher limits:
httpcore's connection pool (under HTTPX) walks every connection it holds, and polls each idle
socket, on every request and every response (encode/httpcore#1035), so with the 64 connections
a fast send rate needs against a distant Telegram, the pool cost more than the sending. aiohttp
keeps its idle connections in a queue and parses HTTP in C: measured against the emulator at
300 messages a second, sending alone (the library, the rate limiter, HTTP) cost 1.2 to 1.5 ms of
CPU a message this way, against 2.0 ms with HTTPX on 8 connections and 3.7 ms on 64.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlencode, urlsplit

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_HEADERS = {"User-Agent": BaseRequest.USER_AGENT}
_FORM_HEADERS = {**_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}
TIMEOUT_SECONDS = 5.0  # connect, read and the wait for a free connection, as PTB's defaults
POOL_TIMEOUT_SECONDS = 1.0


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` over one aiohttp session with up to `connection_pool_size` connections."""

    def __init__(self, connection_pool_size: int = 64,
                 read_timeout: float | None = TIMEOUT_SECONDS) -> None:
        self._size = connection_pool_size
        self._read_timeout = read_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self._size))

    def _proxy(self, url: str) -> str | None:
        """The proxy the environment names for this URL's host (HTTPS_PROXY, NO_PROXY...), as
        HTTPX honours them, looked up once per host: aiohttp's own `trust_env` reads ~/.netrc
        in a worker thread on every request."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxies:
            bypass = bool(urllib.request.proxy_bypass(key[1]))  # type: ignore[attr-defined]
            self._proxies[key] = None if bypass else urllib.request.getproxies().get(key[0])
        return self._proxies[key]

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = TIMEOUT_SECONDS if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = POOL_TIMEOUT_SECONDS if isinstance(pool_timeout, DefaultValue) else pool_timeout
        # aiohttp has no write timeout of its own; a slow upload is bounded by the read timeout.
        timeout = aiohttp.ClientTimeout(
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect, sock_read=read)
        body: aiohttp.FormData | bytes | None = None
        headers = _HEADERS
        if request_data is not None:
            files = request_data.multipart_data
            if files:
                form = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, (filename, content, mimetype) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                body = form
            else:
                # Encoded here: aiohttp makes a form of a dict by way of a multipart writer,
                # which cost more than the rest of building the request.
                body, headers = urlencode(request_data.json_parameters).encode(), _FORM_HEADERS
        try:
            async with self._session.request(method, url, data=body, timeout=timeout,
                                             proxy=self._proxy(url),
                                             headers=headers) as response:
                return response.status, await response.read()
        except TimeoutError as error:  # aiohttp's timeouts are TimeoutErrors too
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}") from error
