"""An async client for the emulator's control API: how tests and benchmarks play the
people on the Telegram side and read what the bot sent them.

    async with EmulatorControl(emulator.url) as telegram:
        alice = await telegram.create_user("Alice")
        await telegram.send_text(alice, "/start invite-token")
        replies = await telegram.wait_for_bot_messages(alice, 1)
"""

from __future__ import annotations

import json
import time
from types import TracebackType
from typing import Any

import aiohttp

# Longer than the server's own wait, so a long poll ends on the server side first.
_WAIT_SLICE_SECONDS = 5.0


class EmulatorError(Exception):
    """The control API refused a request; `status` is the HTTP status."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description


class EmulatorControl:
    def __init__(self, url: str, *, timeout: float = 30.0, connections: int = 100) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        # Kept alive, as many as asked: a benchmark plays a hundred people at once. aiohttp, as
        # for the bot's own requests: the people a benchmark plays share the machine with the
        # bot, and cost it a third of what they cost through httpx.
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None  # made in the event loop, when first used

    async def __aenter__(self) -> EmulatorControl:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- people -------------------------------------------------------------

    async def create_user(
        self,
        first_name: str,
        language_code: str | None = None,
        id: int | None = None,  # the control API's own name for it
        *,
        username: str | None = None,
    ) -> int:
        body: dict[str, Any] = {"first_name": first_name}
        if language_code is not None:
            body["language_code"] = language_code
        if id is not None:
            body["id"] = id
        if username is not None:
            body["username"] = username
        created = await self._post("/emulator/users", body)
        return int(created["id"])

    async def users(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._get("/emulator/users")
        return result

    # -- what people do -----------------------------------------------------

    async def send_text(
        self,
        user_id: int,
        text: str,
        reply_to: int | None = None,
        chat: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send a text as the person; returns {"message_id", "update_id", "version"}."""
        payload: dict[str, Any] = {"text": text}
        if reply_to is not None:
            payload["reply_to_message_id"] = reply_to
        if chat is not None:
            payload["chat"] = chat
        return await self.send(user_id, **payload)

    async def send_voice(self, user_id: int, duration: int) -> dict[str, Any]:
        return await self.send(user_id, voice={"duration": duration})

    async def send(self, user_id: int, **payload: Any) -> dict[str, Any]:
        """Send anything the control API takes: text, voice, sticker, photo, location."""
        result: dict[str, Any] = await self._post(f"/emulator/users/{user_id}/messages", payload)
        return result

    async def edit(self, user_id: int, message_id: int, text: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._post(
            f"/emulator/users/{user_id}/edit", {"message_id": message_id, "text": text}
        )
        return result

    async def press(
        self,
        user_id: int,
        message_id: int,
        *,
        button_text: str | None = None,
        callback_data: str | None = None,
        forge: bool = False,
    ) -> dict[str, Any]:
        """Press an inline button; returns {"update_id", "callback_query_id"}."""
        body: dict[str, Any] = {"message_id": message_id}
        if button_text is not None:
            body["button_text"] = button_text
        if callback_data is not None:
            body["callback_data"] = callback_data
        if forge:
            body["forge"] = True
        result: dict[str, Any] = await self._post(f"/emulator/users/{user_id}/press", body)
        return result

    async def inject(self, update: dict[str, Any]) -> int | None:
        """Queue an arbitrary update for the bot; returns its update_id."""
        result: dict[str, Any] = await self._post("/emulator/updates", {"update": update})
        update_id: int | None = result["update_id"]
        return update_id

    async def block(self, user_id: int) -> None:
        await self._post(f"/emulator/users/{user_id}/block", {})

    async def unblock(self, user_id: int) -> None:
        await self._post(f"/emulator/users/{user_id}/unblock", {})

    # -- what the bot did ---------------------------------------------------

    async def chat(self, chat_id: int) -> dict[str, Any]:
        """The chat's transcript with its version, "typing…" state and reply keyboard."""
        result: dict[str, Any] = await self._get(f"/emulator/chats/{chat_id}")
        return result

    async def transcript(self, user_id: int) -> list[dict[str, Any]]:
        """Every message in the chat, both directions, oldest first."""
        messages: list[dict[str, Any]] = (await self.chat(user_id))["messages"]
        return messages

    async def bot_messages(self, user_id: int) -> list[dict[str, Any]]:
        return [m for m in await self.transcript(user_id) if m["from"]["is_bot"]]

    async def wait_for_bot_messages(
        self, user_id: int, count: int, within: float = 5.0
    ) -> list[dict[str, Any]]:
        """The bot's messages in the chat, once there are at least `count` of them.

        Waits on the server for the chat to change rather than sleeping; raises
        TimeoutError with what did arrive if the bot stays quiet.
        """
        deadline = time.monotonic() + within
        chat = await self.chat(user_id)
        while True:
            sent = [m for m in chat["messages"] if m["from"]["is_bot"]]
            if len(sent) >= count:
                return sent
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"the bot sent {len(sent)} of {count} messages to chat {user_id} in {within} s"
                )
            chat = await self._get(
                f"/emulator/chats/{user_id}",
                params={
                    "version": chat["version"],
                    "timeout": min(remaining, _WAIT_SLICE_SECONDS),
                },
            )

    async def wait_for_answer(
        self, user_id: int, after: int, version: int, within: float = 30.0
    ) -> list[dict[str, Any]]:
        """The bot's messages in the chat after message `after`, once there is one.

        `version` is the chat's version as the person's message left it (sending returns it);
        only messages after `after` travel, so a long chat costs no more than a short one.
        """
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the bot did not answer message {after} in chat {user_id} in {within} s")
            chat = await self._get(
                f"/emulator/chats/{user_id}",
                params={"after": after, "version": version, "timeout": min(remaining, _WAIT_SLICE_SECONDS)},
            )
            answers = [m for m in chat["messages"] if m["from"]["is_bot"]]
            if answers:
                return answers
            version = chat["version"]

    async def callback_answers(self, user_id: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._get(f"/emulator/chats/{user_id}/callback_answers")
        return result

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._get("/emulator/stats")
        return result

    # -- settings -----------------------------------------------------------

    async def configure(self, **settings: Any) -> dict[str, Any]:
        """Change some settings (EmulatorConfig's field names); returns all of them."""
        result: dict[str, Any] = await self._post("/emulator/config", settings)
        return result

    async def reset(self) -> None:
        await self._post("/emulator/reset", {})

    # -- plumbing -----------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        return await self._request("POST", path, json=body)

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self._request("GET", path, params=params)

    async def _request(self, method: str, path: str, **arguments: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                timeout=aiohttp.ClientTimeout(total=self._timeout))
        async with self._session.request(method, self.url + path, **arguments) as response:
            return _answer(response.status, await response.text())


def _answer(status: int, body: str) -> Any:
    if status >= 400:
        try:
            description = json.loads(body).get("error", body)
        except ValueError:
            description = body
        raise EmulatorError(status, description)
    return json.loads(body)
