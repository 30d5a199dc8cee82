"""Messages to one chat leave in the order the dispatcher handed them over."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from bot.scheduling.dispatcher import Outbound
from bot.scheduling.sender import TelegramSender


class SlowFirstBot:
    """Answers the first message it is given slowly, as a busy connection would."""

    def __init__(self) -> None:
        self.arrived: list[tuple[int, str]] = []
        self.calls = 0

    async def send_message(self, chat_id: int, text: str, **_: Any) -> SimpleNamespace:
        self.calls += 1
        await asyncio.sleep(0.05 if self.calls == 1 else 0)
        self.arrived.append((chat_id, text))
        return SimpleNamespace(message_id=len(self.arrived))


def notice(delivery_id: int, chat_id: int, text: str) -> Outbound:
    return Outbound(delivery_id, chat_id, "en",
                    {"key": "notice", "kind": "reflection", "response": "text", "text": text,
                     "notice": True})


async def test_two_messages_to_one_chat_arrive_in_order_while_other_chats_go_on() -> None:
    bot = SlowFirstBot()
    sender = TelegramSender(bot)  # type: ignore[arg-type]
    items = [notice(1, 10, "Alex has joined"), notice(2, 10, "Alex shared an answer"),
             notice(3, 20, "Sam has joined")]
    await asyncio.gather(*(sender.send_prompt(item) for item in items))
    to_sam = [text for chat, text in bot.arrived if chat == 10]
    assert [text.splitlines()[0] for text in to_sam] == ["Alex has joined", "Alex shared an answer"]
    # Another chat does not wait for the first chat's slow message.
    assert bot.arrived[0][0] == 20
    assert sender._chats == {}  # nothing kept once a chat has no messages waiting
