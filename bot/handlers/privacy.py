"""A client's own data: /mydata sends a copy of everything, /delete erases it after a yes.

Both work for anyone who ever consented, also after /stop: that is when people most often ask.
"""

from __future__ import annotations

import json
import logging

from telegram import InputFile, Update
from telegram.error import TelegramError

from bot import messages
from bot.db.models import Client, Therapist
from bot.handlers.common import drop_keyboard, say
from bot.handlers.context import InterludeContext
from bot.handlers.keyboards import buttons
from bot.messages import render
from bot.services import privacy
from bot.services.onboarding import client_by_telegram

log = logging.getLogger(__name__)
EXPORT_FILENAME = "my-interlude-data.json"


async def _client(update: Update, context: InterludeContext) -> Client | None:
    user = update.effective_user
    if user is None:
        return None
    async with context.services.db.transaction() as session:
        client = await client_by_telegram(session, user.id)
    if client is None:
        await say(update, context, messages.MYDATA_NOTHING)
    return client


async def my_data(update: Update, context: InterludeContext) -> None:
    """/mydata: everything stored about them, as a readable JSON file in this chat."""
    client = await _client(update, context)
    chat = update.effective_chat
    if client is None or chat is None:
        return
    async with context.services.db.transaction() as session:
        stored = await session.get(Client, client.id)
        assert stored is not None
        data = await privacy.export_client_data(session, stored, context.services.clock)
    document = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
    await context.bot.send_document(
        chat.id, InputFile(document, filename=EXPORT_FILENAME),
        caption=render(messages.MYDATA_CAPTION, client.language_code))


async def delete_request(update: Update, context: InterludeContext) -> None:
    """/delete: asks once more, with the consequences, before anything is erased."""
    client = await _client(update, context)
    if client is None:
        return
    async with context.services.db.transaction() as session:
        therapist = await session.get(Therapist, client.therapist_id)
        stored = await session.get(Client, client.id)
        assert therapist is not None and stored is not None
        nonce = privacy.offer_erasure(stored)
    language = client.language_code
    await say(update, context, messages.DELETE_CONFIRM, language=language,
              therapist=therapist.display_name,
              keyboard=buttons([(render(messages.DELETE_YES, language), f"erase:yes:{nonce}")],
                               [(render(messages.DELETE_NO, language), "erase:no")]))


async def delete_answer(update: Update, context: InterludeContext) -> None:
    """Yes (this request's own button) erases for real and tells the therapist; no changes nothing."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    await query.answer()
    await drop_keyboard(update)
    services = context.services
    _, choice, nonce = [*(query.data or "").split(":", 2), "", ""][:3]
    language, erased = None, None
    async with services.db.transaction() as session:
        client = await client_by_telegram(session, user.id)
        if client is None:  # a second tap, or a replay after a crash: already done
            reply = messages.DELETE_DONE if choice == "yes" else messages.MYDATA_NOTHING
        elif choice != "yes" or not privacy.erasure_confirmed(client, nonce):
            client.erase_nonce = None
            reply = messages.DELETE_STALE if choice == "yes" else messages.DELETE_KEPT
            language = client.language_code
        else:
            therapist = await session.get(Therapist, client.therapist_id)
            assert therapist is not None
            language, erased = client.language_code, (therapist.telegram_user_id, client.display_name)
            erasure = await privacy.erase_client(session, client, services.clock)
            log.info("client data erased (erasure %d, %d rows)", erasure.id, erasure.rows_deleted)
            reply = messages.DELETE_DONE
    await say(update, context, reply, language=language)
    if erased is not None and erased[0] is not None:
        try:
            await context.bot.send_message(
                erased[0], render(messages.THERAPIST_ERASURE_NOTICE, None, client=erased[1]))
        except TelegramError as error:
            log.warning("could not tell the therapist about an erasure (%s)", type(error).__name__)
