"""Arbitrary, malformed and hostile updates: the bot never crashes, never answers into the wrong
chat, and never keeps anything from someone who has not consented."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.db.models import Reply
from tests.e2e.conftest import BotHarness

CLIENT_ID = 900_001  # the consented client in these tests
STRANGER_ID = 900_002

texts = st.one_of(
    st.text(max_size=300),
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
users = st.sampled_from([CLIENT_ID, STRANGER_ID, 42])
chats = st.sampled_from(
    [
        {"type": "private"},
        {"id": -100777, "type": "group", "title": "g"},
        {"id": -100778, "type": "supergroup", "title": "s"},
        {"id": -100779, "type": "channel", "title": "c"},
    ]
)


@st.composite
def updates(draw: Any) -> dict[str, Any]:
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
    shape = draw(
        st.sampled_from(["message", "edited_message", "callback_query", "channel_post", "unknown", "broken"])
    )
    if shape == "callback_query":
        data = draw(
            st.one_of(
                st.text(max_size=64),
                st.sampled_from(
                    [
                        "ci:1:s:grounded",
                        "ci:999999:i:5",
                        "ans:1:0:0",
                        "ans:x",
                        "consent:y:nope",
                        "tz:set:1:Europe/Berlin",
                        "tz:set:0:../../etc",
                        "quiet:change:1",
                        "ci::::",
                    ]
                ),
            )
        )
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


async def test_arbitrary_updates_never_break_the_bot(harness: BotHarness) -> None:
    """Hundreds of generated updates: the poller survives, answers go only to the sender's private chat."""
    _, token = await harness.invite("Sam")
    sam = await harness.control.create_user("Sam", id=CLIENT_ID)
    await harness.control.create_user("Stranger", id=STRANGER_ID)
    await harness.control.send_text(sam, f"/start {token}")
    await harness.settle()
    consent = (await harness.control.bot_messages(sam))[-1]
    await harness.control.press(sam, consent["message_id"], button_text="Yes, I agree")
    await harness.settle()
    assert harness.runtime is not None
    poller = harness.runtime.poller
    before = await harness.control.stats()
    generated: list[dict[str, Any]] = []

    @settings(
        max_examples=250,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(updates())
    def collect(update: dict[str, Any]) -> None:
        generated.append(update)

    collect()
    for number, update in enumerate(generated, start=10_000_000):
        await poller._process(number, {"update_id": number, **update})
    await asyncio.sleep(0)

    stats = await harness.control.stats()
    delivered = {
        int(chat) for chat, count in stats["delivered"].items() if count > before["delivered"].get(chat, 0)
    }
    assert delivered <= {CLIENT_ID, STRANGER_ID, 42}, "the bot wrote into a group or channel"
    async with harness.db.transaction() as session:
        strangers = await session.scalar(
            select(func.count()).select_from(Reply).where(Reply.client_id.is_(None))
        )
    assert strangers == 0
    # The bot still works afterwards.
    await harness.control.send_text(sam, "/help")
    await harness.settle()
    assert "/pause" in (await harness.control.bot_messages(sam))[-1]["text"]
