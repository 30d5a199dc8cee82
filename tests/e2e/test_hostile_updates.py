"""Arbitrary, malformed and hostile updates: the bot never crashes, never answers into the wrong
chat, never keeps anything from someone who has not consented, and never lets one client answer
another's prompt. `make fuzz` runs the same property with many more examples
(INTERLUDE_FUZZ_EXAMPLES)."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.db.models import OPEN_STATUSES, CheckIn, Client, Delivery, Reply
from tests.e2e.conftest import BotHarness, Person

CLIENT_ID = 900_001  # the consented clients in these tests
OTHER_CLIENT_ID = 900_003
STRANGER_ID = 900_002
EXAMPLES = int(os.environ.get("INTERLUDE_FUZZ_EXAMPLES", "250"))

texts = st.one_of(
    st.text(max_size=300),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=3000, max_size=5000),  # huge, any script
    st.sampled_from(
        [
            "/start",
            "/start x",
            "/stop",
            "/pause 3",
            "/pause -1",
            "/timezone",
            "i want to die",
            "",
            "/start t_forged",
            "\u202e\u0000",
            "a" * 4096,
        ]
    ),
)
users = st.sampled_from([CLIENT_ID, OTHER_CLIENT_ID, STRANGER_ID, 42])
chats = st.sampled_from(
    [
        {"type": "private"},
        {"id": -100777, "type": "group", "title": "g"},
        {"id": -100778, "type": "supergroup", "title": "s"},
        {"id": -100779, "type": "channel", "title": "c"},
    ]
)


def callback_data(open_deliveries: list[int]) -> st.SearchStrategy[str]:
    """Forged, malformed and real button data, aimed at anyone's prompts."""
    real = st.sampled_from(open_deliveries)
    return st.one_of(
        st.text(max_size=64),
        st.builds(lambda d, s: f"ci:{d}:s:{s}", real, st.sampled_from(["grounded", "activated", "x"])),
        st.builds(lambda d, n: f"ci:{d}:i:{n}", real, st.integers(-2, 12)),
        st.builds(lambda d, q, b: f"ans:{d}:{q}:{b}", real, st.integers(-1, 3), st.integers(-1, 12)),
        st.sampled_from([
            "ci:1:s:grounded", "ci:999999:i:5", "ans:1:0:0", "ans:x", "consent:y:nope", "consent:renew",
            "erase:yes", "tz:set:1:Europe/Berlin", "tz:set:0:../../etc", "quiet:change:1", "ci::::",
        ]),
    )


@st.composite
def updates(draw: Any, open_deliveries: list[int]) -> dict[str, Any]:
    user = draw(users)
    sender = {"id": user, "is_bot": False, "first_name": draw(st.text(min_size=1, max_size=20))}
    chat = dict(draw(chats))
    if chat["type"] == "private":
        chat["id"] = user
    message: dict[str, Any] = {
        "message_id": draw(st.integers(1, 10**6)),
        "date": 1_700_000_000,
        "chat": chat,
        "from": sender,
    }
    kind = draw(st.sampled_from(["text", "caption", "sticker", "location", "bare", "reply"]))
    if kind in ("text", "reply"):
        message["text"] = draw(texts)
        if message["text"].startswith("/"):
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(message["text"].split(" ")[0])}
            ]
    if kind == "reply":
        message["reply_to_message"] = {"message_id": draw(st.integers(1, 10**6)), "date": 1, "chat": chat}
    if kind == "caption":
        message["photo"] = [{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}]
        message["caption"] = draw(texts)
    if kind == "sticker":
        message["sticker"] = {
            "file_id": "s",
            "file_unique_id": "s",
            "type": "regular",
            "width": 1,
            "height": 1,
            "is_animated": False,
            "is_video": False,
        }
    if kind == "location":
        message["location"] = {"latitude": 1.0, "longitude": 2.0}
    shape = draw(st.sampled_from(
        ["message", "edited_message", "callback_query", "press", "channel_post", "unknown", "broken"]))
    if shape == "press":  # a consented client pressing a well-formed button on any open prompt
        shape = "callback_query"
        sender["id"] = chat["id"] = draw(st.sampled_from([CLIENT_ID, OTHER_CLIENT_ID]))
        chat["type"] = "private"
        data = draw(st.builds(lambda d, s: f"ci:{d}:s:{s}", st.sampled_from(open_deliveries),
                              st.sampled_from(["grounded", "activated", "shut_down"])))
    elif shape == "callback_query":
        data = draw(callback_data(open_deliveries))
    if shape == "callback_query":
        return {
            "callback_query": {
                "id": str(draw(st.integers(1, 10**9))),
                "from": sender,
                "chat_instance": "ci",
                "data": data,
                "message": message,
            }
        }
    if shape == "broken":
        return {"message": {"text": draw(texts)}}  # required fields missing
    if shape == "unknown":
        return {"poll_answer": {"poll_id": "1", "option_ids": [0]}}
    return {shape: message}


async def _consented(harness: BotHarness, name: str, user_id: int, program: str) -> int:
    client_id, token = await harness.invite(name, program=program,
                                            anchor=datetime(2026, 3, 1, 18, 0, tzinfo=BERLIN))
    await harness.control.create_user(name, id=user_id)
    await harness.onboard(Person(harness.control, harness, user_id), token)
    return client_id


BERLIN = ZoneInfo("Europe/Berlin")


async def test_arbitrary_updates_never_break_the_bot(harness: BotHarness) -> None:
    """Generated updates: the poller survives, answers go only to the sender's private chat,
    strangers leave nothing behind, and no one answers another client's prompt."""
    sam_id = await _consented(harness, "Sam", CLIENT_ID, "evening-checkin")
    ana_id = await _consented(harness, "Ana", OTHER_CLIENT_ID, "integration-7day")
    await harness.control.create_user("Stranger", id=STRANGER_ID)
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    async with harness.db.transaction() as session:
        planned = list(await session.scalars(select(Delivery)))
    owner = {d.id: d.client_id for d in planned}
    open_checkins = {d.id for d in planned
                     if d.status in OPEN_STATUSES and d.prompt["response"] == "checkin"}
    assert open_checkins, "a check-in must be open for the presses to aim at"
    assert set(owner.values()) >= {sam_id, ana_id}, "both clients need prompts to aim at"
    assert harness.runtime is not None
    poller = harness.runtime.poller
    before = await harness.control.stats()
    generated: list[dict[str, Any]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large],
    )
    @given(updates(sorted(owner)))
    def collect(update: dict[str, Any]) -> None:
        generated.append(update)

    collect()
    # Every tenth update is delivered twice, as Telegram may replay one after a lost answer.
    stream = [u for n, u in enumerate(generated) for _ in range(2 if n % 10 == 0 else 1)]
    for number, update in enumerate(stream, start=10_000_000):
        await poller._process(number, {"update_id": number, **update})
    await asyncio.sleep(0)

    stats = await harness.control.stats()
    delivered = {
        int(chat) for chat, count in stats["delivered"].items() if count > before["delivered"].get(chat, 0)
    }
    assert delivered <= {CLIENT_ID, OTHER_CLIENT_ID, STRANGER_ID, 42}, "the bot wrote into a group or channel"
    async with harness.db.transaction() as session:
        bound = set(await session.scalars(select(Client.telegram_user_id)))
        replies = (await session.execute(select(Reply.client_id, Reply.delivery_id))).all()
        checkins = (await session.execute(select(CheckIn.client_id, CheckIn.delivery_id))).all()
        states = dict((await session.execute(select(CheckIn.delivery_id, CheckIn.state))).all())
    assert bound == {CLIENT_ID, OTHER_CLIENT_ID}, "someone without consent was taken on"
    # Each check-in shows the state its own client pressed last, until they sent /stop; nobody
    # else's presses count.
    client_of = {CLIENT_ID: sam_id, OTHER_CLIENT_ID: ana_id}
    stopped: set[int] = set()
    expected: dict[int, str] = {}
    for update in stream:
        message = update.get("message") or {}
        if message.get("chat", {}).get("type") == "private" and "entities" in message \
                and re.match(r"/stop(@\w+)?(\s|$)", message.get("text", "")):
            stopped.add(message["from"]["id"])
        query = update.get("callback_query") or {}
        pressed = re.fullmatch(r"ci:(\d+):s:(grounded|activated|shut_down)", query.get("data", ""))
        presser = query.get("from", {}).get("id")
        if pressed and int(pressed[1]) in open_checkins and presser not in stopped \
                and client_of.get(presser) == owner[int(pressed[1])]:
            expected[int(pressed[1])] = pressed[2]
    assert {d: s.value for d, s in states.items() if s is not None} == expected
    assert {client for client, _ in replies} <= {sam_id, ana_id}
    crossed = [(c, d) for c, d in [*replies, *checkins] if d is not None and owner.get(d, c) != c]
    assert crossed == [], "a client's answer was filed under another client's prompt"
    # The bot still works afterwards.
    await harness.control.send_text(CLIENT_ID, "/help")
    await harness.settle()
    answer = (await harness.control.bot_messages(CLIENT_ID))[-1]["text"]
    assert ("You've stopped the prompts" if CLIENT_ID in stopped else "/pause") in answer
