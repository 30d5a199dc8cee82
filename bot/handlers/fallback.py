"""What nothing else handled: unknown commands and messages the bot cannot keep."""

from __future__ import annotations

from telegram import Update

from bot import messages
from bot.handlers.common import current_client, say
from bot.handlers.context import InterludeContext
from bot.handlers.crisis import respond_to_crisis


async def unknown_command(update: Update, context: InterludeContext) -> None:
    """A command the bot does not know gets pointed to /help."""
    client = await current_client(update, context)
    if client is not None:
        await say(update, context, messages.UNKNOWN_COMMAND, language=client.language_code)


async def unsupported(update: Update, context: InterludeContext) -> None:
    """Stickers, photos, locations and the like: kindly not kept (a caption is still screened)."""
    message = update.effective_message
    if message is not None and await respond_to_crisis(update, context, message, message.caption,
                                                       keep=False):
        return
    client = await current_client(update, context)
    if client is not None:
        await say(update, context, messages.ONLY_WORDS_AND_VOICE, language=client.language_code)
