"""Small helpers every handler uses: who is writing, and saying a catalog message to them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.ext import ContextTypes

from bot import messages
from bot.db.models import Client, ClientStatus
from bot.handlers.context import InterludeContext
from bot.messages import render
from bot.scheduling.ratelimit import PRIORITY
from bot.services.onboarding import client_by_telegram

CONTEXT_TYPES = ContextTypes(context=InterludeContext)


def language_of(update: Update, client: Client | None = None) -> str | None:
    if client is not None and client.language_code:
        return client.language_code
    user = update.effective_user
    return user.language_code if user else None


async def say(update: Update, context: InterludeContext, message: str, *,
              language: str | None = None, keyboard: InlineKeyboardMarkup | None = None,
              urgent: bool = False, **values: object) -> Message | None:
    """Send a catalog message into the chat this update came from (urgent: ahead of the queue)."""
    chat = update.effective_chat
    if chat is None:
        return None
    text = render(message, language or language_of(update), **values)
    return await context.bot.send_message(chat.id, text, reply_markup=keyboard,
                                          rate_limit_args=PRIORITY if urgent else None)


async def current_client(update: Update, context: InterludeContext) -> Client | None:
    """The client behind this update, if they are someone we may talk with and keep data for.

    Tells everyone else why not (never invited, or stopped) and returns None. A client who
    had blocked the bot and writes again is reachable again.
    """
    user = update.effective_user
    if user is None:
        return None
    async with context.services.db.transaction() as session:
        client = await writer(session, user.id)
    return client if await welcome(update, context, client) else None


async def writer(session: AsyncSession, telegram_user_id: int) -> Client | None:
    """The client writing, within a transaction of the caller's (reachable again if they had
    blocked the bot); whether to talk with them is `welcome`'s to say after the commit."""
    client = await client_by_telegram(session, telegram_user_id)
    if client is not None and client.status is ClientStatus.UNREACHABLE:
        client.status = ClientStatus.ACTIVE
    return client


async def welcome(update: Update, context: InterludeContext, client: Client | None) -> bool:
    """True for a client we may talk with; everyone else is told why not (never invited, or
    stopped)."""
    if client is None:
        await say(update, context, messages.NOT_INVITED)
        return False
    if client.status is ClientStatus.STOPPED:
        await say(update, context, messages.STOPPED_ALREADY, language=client.language_code)
        return False
    return True


@asynccontextmanager
async def client_for_update(
    context: InterludeContext, client_id: int
) -> AsyncIterator[tuple[AsyncSession, Client]]:
    """A transaction with the client's row loaded for changing: the one way handlers write it."""
    async with context.services.db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        yield session, client


async def button_press(update: Update, context: InterludeContext) -> tuple[CallbackQuery, str, Client] | None:
    """The pressed button's query, its data and the client; None (press answered) otherwise."""
    query = update.callback_query
    if query is None or query.data is None:
        return None
    client = await current_client(update, context)
    if client is None:
        await query.answer()
        return None
    return query, query.data, client


async def drop_keyboard(update: Update) -> None:
    """Take the buttons off a message once used, so an old choice is not pressed again."""
    query = update.callback_query
    if query is not None and query.message is not None and getattr(query.message, "reply_markup", None):
        await query.edit_message_reply_markup(reply_markup=None)


def replied_to(message: Message) -> int | None:
    """The id of the message this one replies to in Telegram, if any."""
    return message.reply_to_message.message_id if message.reply_to_message else None
