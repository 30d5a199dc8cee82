"""The control API (`/emulator/...`): plays the people on the Telegram side and shows
what the bot did, for tests, the demo chat page and benchmarks.

JSON in, JSON out. Errors are `{"error": "..."}` with an HTTP status. The client for
these routes is control.py.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.emulator.config import EmulatorConfig
from bot.emulator.methods import BotApi
from bot.emulator.world import ControlError, Person, TelegramWorld, text_content

MAX_CHAT_WAIT_SECONDS = 30.0
VOICE_BYTES_PER_SECOND = 1600  # about what Telegram's Opus voice notes take

Endpoint = Callable[[Request], Awaitable[Response]]


def control_routes(world: TelegramWorld, api: BotApi, startup_config: EmulatorConfig) -> list[Route]:
    """The control API's routes, bound to one emulated Telegram."""

    def endpoint(handler: Callable[[Request], Awaitable[Any]], status: int = 200) -> Endpoint:
        async def answer(request: Request) -> Response:
            try:
                result = await handler(request)
            except ControlError as error:
                return JSONResponse({"error": error.message}, status_code=error.status)
            return JSONResponse(result, status_code=status)

        return answer

    async def create_person(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        first_name = body.get("first_name")
        if not isinstance(first_name, str) or not first_name.strip():
            raise ControlError(400, "first_name is required")
        person = world.add_person(
            first_name,
            language_code=_optional_str(body, "language_code"),
            person_id=_optional_int(body, "id"),
            username=_optional_str(body, "username"),
            last_name=_optional_str(body, "last_name"),
        )
        return {"id": person.id}

    async def list_people(request: Request) -> list[dict[str, Any]]:
        return [person.as_json() for person in world.people.values()]

    async def send_message(request: Request) -> dict[str, Any]:
        person = _person(world, request)
        body = await _json_body(request)
        chat = None
        if body.get("chat") is not None:
            if not isinstance(body["chat"], dict):
                raise ControlError(400, 'chat must be an object like {"id": -100123}')
            chat = world.group_chat(body["chat"], person)
        sent = world.post_message(
            person,
            _message_content(world, body),
            reply_to_message_id=_optional_int(body, "reply_to_message_id"),
            chat=chat,
        )
        # The chat's version with this message in it: wait from there for the bot's answer.
        return {**sent, "version": (chat or world.chats[person.id]).version}

    async def edit_message(request: Request) -> dict[str, Any]:
        person = _person(world, request)
        body = await _json_body(request)
        message_id = _required_int(body, "message_id")
        text = body.get("text")
        if not isinstance(text, str):
            raise ControlError(400, "text is required")
        chat = _chat_of(world, body, person)
        return {"update_id": world.edit_by_person(person, message_id, text, chat)}

    async def press_button(request: Request) -> dict[str, Any]:
        person = _person(world, request)
        body = await _json_body(request)
        callback_data = _optional_str(body, "callback_data")
        button_text = _optional_str(body, "button_text")
        if callback_data is None and button_text is None:
            raise ControlError(400, "give callback_data or button_text")
        return world.press(
            person,
            _required_int(body, "message_id"),
            callback_data=callback_data,
            button_text=button_text,
            forge=bool(body.get("forge", False)),
            chat=_chat_of(world, body, person),
        )

    async def block(request: Request) -> dict[str, Any]:
        return {"update_id": world.set_blocked(_person(world, request), True)}

    async def unblock(request: Request) -> dict[str, Any]:
        return {"update_id": world.set_blocked(_person(world, request), False)}

    async def inject_update(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        update = body.get("update")
        if not isinstance(update, dict):
            raise ControlError(400, 'give the update as {"update": {...}}')
        return {"update_id": world.inject(update)}

    async def transcript(request: Request) -> dict[str, Any]:
        chat = world.chat(_path_int(request, "chat_id"))
        # ?version=N&timeout=S waits until the chat changes from version N: the demo
        # page and tests wait for the bot's answer this way instead of sleeping.
        version = request.query_params.get("version")
        if version is not None:
            timeout = _query_float(request, "timeout", 20.0)
            if not version.lstrip("-").isdigit():
                raise ControlError(400, "version must be an integer")
            await world.wait_for_chat_change(chat, int(version), min(timeout, MAX_CHAT_WAIT_SECONDS))
            chat = world.chat(chat.id)
        person = world.people.get(chat.id)
        # ?after=M gives only the messages after message M: a long chat need not travel whole.
        after = request.query_params.get("after")
        if after is not None and not after.isdigit():
            raise ControlError(400, "after must be a message id")
        messages = chat.messages if after is None else [
            message for message in chat.messages if message["message_id"] > int(after)]
        return {
            "messages": messages,
            "version": chat.version,
            "action": world.current_action(chat),
            "keyboard": chat.reply_keyboard,
            "blocked": person.blocked if person else False,
            "callback_answers": world.callback_answers.get(chat.id, []),
        }

    async def callback_answers(request: Request) -> list[dict[str, Any]]:
        person_id = _path_int(request, "person_id")
        world.person(person_id)
        return world.callback_answers.get(person_id, [])

    async def stats(request: Request) -> dict[str, Any]:
        return world.stats_json()

    async def read_config(request: Request) -> dict[str, Any]:
        return world.config.as_dict()

    async def change_config(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        try:
            world.config.update(body)
        except ValueError as problem:
            raise ControlError(400, str(problem)) from None
        api.flood.reset()
        return world.config.as_dict()

    async def reset(request: Request) -> dict[str, Any]:
        world.reset()
        # Back to the settings the emulator was started with, not the class defaults:
        # a test suite that started it without rate limits keeps it that way.
        world.config.update(startup_config.as_dict())
        api.flood.reset()
        return {"ok": True}

    return [
        Route("/emulator/users", endpoint(create_person), methods=["POST"]),
        Route("/emulator/users", endpoint(list_people), methods=["GET"]),
        Route("/emulator/users/{person_id:int}/messages", endpoint(send_message), methods=["POST"]),
        Route("/emulator/users/{person_id:int}/edit", endpoint(edit_message), methods=["POST"]),
        Route("/emulator/users/{person_id:int}/press", endpoint(press_button), methods=["POST"]),
        Route("/emulator/users/{person_id:int}/block", endpoint(block), methods=["POST"]),
        Route("/emulator/users/{person_id:int}/unblock", endpoint(unblock), methods=["POST"]),
        Route("/emulator/updates", endpoint(inject_update), methods=["POST"]),
        Route("/emulator/chats/{chat_id}", endpoint(transcript), methods=["GET"]),
        Route(
            "/emulator/chats/{person_id:int}/callback_answers",
            endpoint(callback_answers),
            methods=["GET"],
        ),
        Route("/emulator/stats", endpoint(stats), methods=["GET"]),
        Route("/emulator/config", endpoint(read_config), methods=["GET"]),
        Route("/emulator/config", endpoint(change_config), methods=["POST"]),
        Route("/emulator/reset", endpoint(reset), methods=["POST"]),
    ]


def _message_content(world: TelegramWorld, body: dict[str, Any]) -> dict[str, Any]:
    """The Telegram fields of what a person sends: text, voice, sticker, photo or location."""
    if "text" in body:
        text = body["text"]
        if not isinstance(text, str):
            raise ControlError(400, "text must be a string")
        return text_content(text)
    content: dict[str, Any]
    if "voice" in body:
        voice = body["voice"] if isinstance(body["voice"], dict) else {}
        duration = voice.get("duration", 1)
        if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
            raise ControlError(400, "voice duration is a whole number of seconds")
        stored = world.add_file("voice", max(duration, 1) * VOICE_BYTES_PER_SECOND)
        content = {
            "voice": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "duration": duration,
                "mime_type": "audio/ogg",
                "file_size": stored.size,
            }
        }
    elif "sticker" in body:
        stored = world.add_file("stickers", 24_000)
        content = {
            "sticker": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": "🙂",
                "file_size": stored.size,
            }
        }
    elif "photo" in body:
        sizes = []
        for width, height, size in ((90, 68, 1_500), (800, 600, 48_000)):
            stored = world.add_file("photos", size)
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": width,
                    "height": height,
                    "file_size": size,
                }
            )
        content = {"photo": sizes}
    elif "location" in body:
        location = body["location"] if isinstance(body["location"], dict) else {}
        latitude, longitude = location.get("latitude"), location.get("longitude")
        if not all(_is_number(value) for value in (latitude, longitude)):
            raise ControlError(400, "a location needs numeric latitude and longitude")
        content = {"location": {"latitude": latitude, "longitude": longitude}}
    else:
        raise ControlError(400, "send text, voice, sticker, photo or location")
    caption = body.get("caption")
    if isinstance(caption, str) and caption and ("voice" in content or "photo" in content):
        content["caption"] = caption
    return content


def _person(world: TelegramWorld, request: Request) -> Person:
    return world.person(request.path_params["person_id"])


def _chat_of(world: TelegramWorld, body: dict[str, Any], person: Person) -> Any:
    """The chat named by an optional "chat_id" (a group); the private chat otherwise."""
    chat_id = _optional_int(body, "chat_id")
    if chat_id is None:
        return None
    chat = world.chat(chat_id)
    if person.id not in chat.members:
        raise ControlError(403, f"person {person.id} is not in chat {chat_id}")
    return chat


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    try:
        decoded = await request.json()
    except ValueError:
        raise ControlError(400, "the body must be JSON") from None
    if not isinstance(decoded, dict):
        raise ControlError(400, "the body must be a JSON object")
    return decoded


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ControlError(400, f"{name} must be a string")
    return value


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ControlError(400, f"{name} must be an integer")
    return value


def _required_int(body: dict[str, Any], name: str) -> int:
    value = _optional_int(body, name)
    if value is None:
        raise ControlError(400, f"{name} is required")
    return value


def _path_int(request: Request, name: str) -> int:
    try:
        return int(request.path_params[name])
    except ValueError:
        raise ControlError(404, f"{name} must be an integer") from None


def _query_float(request: Request, name: str, default: float) -> float:
    try:
        value = float(request.query_params.get(name, default))
    except ValueError:
        raise ControlError(400, f"{name} must be a number") from None
    if not math.isfinite(value) or value < 0:
        raise ControlError(400, f"{name} must be a non-negative number")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
