"""The emulator against the Bot API spec: what it accepts, what it refuses, and the
shape of everything it answers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bot.emulator import EmulatorControl, EmulatorThread
from bot.emulator.botapi import BotApiSpec

from .conftest import TOKEN, started_user


@pytest.fixture
async def http(emulator: EmulatorThread) -> Any:
    async with httpx.AsyncClient(base_url=f"{emulator.url}/bot{TOKEN}") as client:
        yield client


async def test_an_unknown_method_is_not_found(http: httpx.AsyncClient) -> None:
    """A method the spec does not know is 404 with Telegram's exact body."""
    response = await http.post("/sendTelepathy", data={"chat_id": "1"})
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_a_malformed_token_is_not_found(emulator: EmulatorThread) -> None:
    """A token that is not "<digits>:<letters>" is 404, as Telegram answers it."""
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emulator.url}/botnot-a-token/getMe")
    assert response.status_code == 404
    assert response.json()["description"] == "Not Found"


async def test_method_names_ignore_case(http: httpx.AsyncClient) -> None:
    """Telegram matches method names without regard to case; so does the emulator."""
    response = await http.get("/GETME")
    assert response.json()["ok"] is True


async def test_a_method_the_emulator_does_not_implement_says_so(
    http: httpx.AsyncClient,
) -> None:
    """A valid call to a spec method the emulator lacks is 400 saying it is not implemented."""
    response = await http.post("/sendPhoto", data={"chat_id": "1", "photo": "AgACAgQAAx0"})
    assert response.status_code == 400
    assert "does not implement" in response.json()["description"]


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("sendMessage", {"text": "hi"}, "Bad Request: chat_id is empty"),
        ("sendMessage", {"chat_id": "1"}, "Bad Request: message text is empty"),
        ("setMyCommands", {}, "parameter 'commands' is required"),
        ("getFile", {}, "file_id not specified"),
    ],
)
async def test_a_missing_required_parameter_is_refused(
    http: httpx.AsyncClient, method: str, params: dict[str, str], expected: str
) -> None:
    """Leaving out a parameter the spec requires is 400, in Telegram's words where known."""
    response = await http.post(f"/{method}", data=params)
    assert response.status_code == 400
    assert expected in response.json()["description"]


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("getUpdates", {"limit": "abc"}, "'limit' of getUpdates must be Integer"),
        (
            "editMessageText",
            {"chat_id": "1", "message_id": "abc", "text": "x"},
            "'message_id' of editMessageText must be Integer",
        ),
        (
            "sendMessage",
            {"chat_id": "1", "text": "x", "reply_markup": "{not json"},
            "not JSON",
        ),
        (
            "sendMessage",
            {"chat_id": "1", "text": "x", "reply_markup": '{"inline_keyboard": [[{"url": "x"}]]}'},
            "InlineKeyboardButton needs field 'text'",
        ),
        (
            "sendMessage",
            {"chat_id": "1", "text": "x", "reply_markup": '{"inline_keyboard": "flat"}'},
            "expected an array",
        ),
        (
            "sendMessage",
            {"chat_id": "1", "text": "x", "disable_notification": "maybe"},
            "must be Boolean",
        ),
        (
            "sendMessage",
            {"chat_id": "1", "text": "x", "reply_parameters": '{"chat_id": 1}'},
            "ReplyParameters needs field 'message_id'",
        ),
        (
            "setMyCommands",
            {"commands": '[{"command": "start"}]'},
            "BotCommand needs field 'description'",
        ),
    ],
    ids=[
        "integer",
        "integer-only-chat-param",
        "reply-markup-not-json",
        "button-without-text",
        "keyboard-not-array",
        "boolean",
        "nested-required",
        "array-item-required",
    ],
)
async def test_a_parameter_of_the_wrong_type_is_refused(
    http: httpx.AsyncClient, method: str, params: dict[str, str], expected: str
) -> None:
    """A value that does not fit the spec's type, however deep, is 400 naming the parameter."""
    response = await http.post(f"/{method}", data=params)
    assert response.status_code == 400
    assert expected in response.json()["description"]


async def test_a_json_body_is_checked_the_same_way(http: httpx.AsyncClient) -> None:
    """JSON bodies carry native values; a boolean where chat_id is due is still refused."""
    response = await http.post("/sendMessage", json={"chat_id": True, "text": "x"})
    assert response.status_code == 400
    assert "'chat_id' of sendMessage must be Integer or String" in response.json()["description"]


async def test_an_unknown_parameter_is_refused(http: httpx.AsyncClient) -> None:
    """A parameter the method does not have is 400, which catches typos in the bot."""
    response = await http.post("/sendMessage", data={"chat_id": "1", "text": "x", "txet": "y"})
    assert response.status_code == 400
    assert "unknown parameter 'txet'" in response.json()["description"]


async def test_every_encoding_of_a_request_is_accepted(
    http: httpx.AsyncClient, telegram: EmulatorControl
) -> None:
    """Form, JSON body, query string and multipart requests all reach the method."""
    alice = await started_user(telegram)
    markup = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}

    as_form = await http.post(
        "/sendMessage",
        data={"chat_id": str(alice), "text": "form", "reply_markup": json.dumps(markup)},
    )
    as_json = await http.post("/sendMessage", json={"chat_id": alice, "text": "json", "reply_markup": markup})
    as_query = await http.get("/sendMessage", params={"chat_id": str(alice), "text": "query"})
    as_multipart = await http.post(
        "/setWebhook",
        data={"url": "http://127.0.0.1:9/hook"},
        files={"certificate": ("cert.pem", b"-----BEGIN CERTIFICATE-----", "text/plain")},
    )
    await http.post("/deleteWebhook")

    for response in (as_form, as_json, as_query, as_multipart):
        assert response.status_code == 200, response.text
    assert as_form.json()["result"]["reply_markup"] == markup
    assert as_json.json()["result"]["reply_markup"] == markup
    assert [m["text"] for m in await telegram.bot_messages(alice)] == ["form", "json", "query"]


async def test_every_update_kind_fits_the_spec(
    http: httpx.AsyncClient, telegram: EmulatorControl, spec: BotApiSpec
) -> None:
    """Every update the emulator makes, of every kind, has the fields the spec requires."""
    alice = await started_user(telegram)
    sent = await http.post(
        "/sendMessage",
        json={
            "chat_id": alice,
            "text": "<b>Pick</b>",
            "parse_mode": "HTML",
            "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
        },
    )
    message_id = sent.json()["result"]["message_id"]
    said = await telegram.send_text(alice, "a reply", reply_to=message_id)
    await telegram.edit(alice, said["message_id"], "an edited reply")
    await telegram.send_voice(alice, 3)
    await telegram.send(alice, sticker={})
    await telegram.send(alice, photo={}, caption="my view")
    await telegram.send(alice, location={"latitude": 52.52, "longitude": 13.4})
    await telegram.send_text(alice, "/start@InterludeDemoBot", chat={"id": -100123, "title": "Us"})
    await telegram.press(alice, message_id, callback_data="a")
    await telegram.press(alice, 999, callback_data="forged", forge=True)
    await telegram.block(alice)
    await telegram.unblock(alice)

    answer = (await http.post("/getUpdates")).json()
    assert answer["ok"] is True
    assert len(answer["result"]) == 12
    assert spec.missing_fields("Array of Update", answer["result"]) == []
    assert spec.check_result("getUpdates", answer["result"]) == []


async def test_every_transcript_message_fits_the_spec(
    http: httpx.AsyncClient, telegram: EmulatorControl, spec: BotApiSpec
) -> None:
    """The transcript holds real Message objects, both directions."""
    alice = await started_user(telegram)
    await http.post("/sendMessage", data={"chat_id": str(alice), "text": "hello"})
    await telegram.send_voice(alice, 2)

    for message in await telegram.transcript(alice):
        assert spec.missing_fields("Message", message) == []


async def test_the_shape_checker_notices_missing_fields(spec: BotApiSpec) -> None:
    """The checker itself reports a missing required field and a wrong type, deep inside."""
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 1},
            "from": {"id": "1", "is_bot": False, "first_name": "A"},
        },
    }
    problems = spec.missing_fields("Update", update)
    assert any("chat.type" in problem for problem in problems)
    assert any("from.id" in problem and "Integer" in problem for problem in problems)


async def test_form_and_json_encodings_give_the_same_values(spec: BotApiSpec) -> None:
    """A form-encoded request and its JSON twin are read into the same Python values."""
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    from_form = spec.parse_parameters(
        "sendMessage",
        {
            "chat_id": "42",
            "text": "hi",
            "disable_notification": "true",
            "reply_markup": json.dumps(markup),
        },
    )
    from_json = spec.parse_parameters(
        "sendMessage",
        {"chat_id": 42, "text": "hi", "disable_notification": True, "reply_markup": markup},
    )
    assert (
        from_form
        == from_json
        == {
            "chat_id": 42,
            "text": "hi",
            "disable_notification": True,
            "reply_markup": markup,
        }
    )
