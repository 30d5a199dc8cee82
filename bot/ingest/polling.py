"""Our own polling loop: store a batch in the inbox, then ask for the next offset.

python-telegram-bot's Updater confirms updates (by asking for the next offset) before any
handler has run, so a crash loses them. Here the offset moves only after the batch is committed,
and handling reads from the inbox, so nothing Telegram handed over is lost or handled twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.exc import DBAPIError
from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application

from bot import messages
from bot.ingest.inbox import MAX_ATTEMPTS, Inbox
from bot.ingest.leader import InboxLeadership
from bot.messages import render

log = logging.getLogger(__name__)
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
INBOX_CHECK_SECONDS = 0.5
DATABASE_RETRY_SECONDS = 0.5
MAX_DATABASE_RETRY_SECONDS = 15.0


class InboxPoller:
    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any], inbox: Inbox,
                 failed_updates: set[int], poll_timeout: int = 25,
                 leadership: InboxLeadership | None = None) -> None:
        self.application = application
        self.inbox = inbox
        self.leadership = leadership or InboxLeadership(inbox.db)
        self.failed_updates = failed_updates
        self.poll_timeout = poll_timeout
        self._offset: int | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._fetching: asyncio.Task[list[dict[str, Any]]] | None = None
        self.processed = 0

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        # A long poll in flight can be dropped: its updates are not confirmed until stored.
        if self._fetching is not None:
            self._fetching.cancel()

    async def run(self, *, fetch: bool = True) -> None:
        """Poll until stopped, while this process leads; handle what is stored after every batch.

        With `fetch` False (webhook mode) nothing is asked of Telegram: the webhook stores
        updates, and this loop handles what any process stored, as it arrives."""
        backoff = DATABASE_RETRY_SECONDS
        try:
            while await self.leadership.acquire(self._stopping):
                try:
                    if fetch:
                        await self._poll_while_leading()
                    else:
                        await self._handle_while_leading()
                except (DBAPIError, OSError) as error:
                    # The database went away (a restart, say). Nothing is lost: an update is
                    # confirmed to Telegram only once stored, and marked done only once handled.
                    log.warning("the inbox is out of reach (%s); trying again in %.0f s",
                                type(error).__name__, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, MAX_DATABASE_RETRY_SECONDS)
                else:
                    backoff = DATABASE_RETRY_SECONDS
        finally:
            await self.leadership.release()

    def wake(self) -> None:
        """Something was stored in the inbox: handle it now rather than at the next check."""
        self._wake.set()

    async def _handle_while_leading(self) -> None:
        while not self._stopping.is_set():
            if not await self.leadership.still_held():
                return
            self._wake.clear()
            await self.process_pending()
            # Woken by this process's webhook at once; what another process stored is found
            # at the next check.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=INBOX_CHECK_SECONDS)

    async def _poll_while_leading(self) -> None:
        last = await self.inbox.last_update_id()
        self._offset = last + 1 if last is not None else None
        backoff = 1.0
        while not self._stopping.is_set():
            if not await self.leadership.still_held():
                return
            await self.process_pending()
            self._fetching = asyncio.create_task(self._fetch())
            try:
                batch = await self._fetching
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    return
                raise
            except RetryAfter as error:
                await self._sleep(_seconds(error.retry_after))
                continue
            except (TimedOut, NetworkError) as error:
                log.warning("polling failed (%s); trying again in %.0f s", type(error).__name__,
                            backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 60)
                continue
            except (Conflict, InvalidToken):
                log.exception("Telegram refused polling; is a webhook set or the token wrong?")
                raise
            finally:
                self._fetching = None
            backoff = 1.0
            if batch:
                await self.inbox.store(batch)
                self._offset = max(u["update_id"] for u in batch) + 1

    async def _fetch(self) -> list[dict[str, Any]]:
        updates = await self.application.bot.get_updates(
            offset=self._offset, limit=100, timeout=self.poll_timeout,
            allowed_updates=ALLOWED_UPDATES, read_timeout=self.poll_timeout + 10)
        # Stored as JSON; fields PTB does not know yet travel in api_kwargs and survive too.
        return [update.to_dict() for update in updates]

    async def process_pending(self) -> int:
        """Hand every stored, unhandled update to the application, oldest first."""
        handled = 0
        while True:
            pending = await self.inbox.pending()
            if not pending:
                return handled
            for update_id, payload in pending:
                await self._process(update_id, payload)
                handled += 1

    async def _process(self, update_id: int, payload: dict[str, Any]) -> None:
        self.failed_updates.discard(update_id)
        try:
            update = Update.de_json(payload, self.application.bot)
        except Exception as error:
            # Retrying cannot mend it: set it aside (payload cleared) and carry on.
            log.warning("update %d is malformed (%s); set aside", update_id, type(error).__name__)
            await self.inbox.done(update_id, error="malformed update")
            return
        try:
            await self.application.process_update(update)
        except Exception as error:
            self.failed_updates.add(update_id)
            log.warning("update %d failed (%s)", update_id, type(error).__name__)
        if update_id in self.failed_updates:
            attempts = await self.inbox.failed(update_id, "handler error")
            if attempts >= MAX_ATTEMPTS:
                await self._apologise(payload)
            else:
                await self._sleep(min(0.2 * attempts, 2))
            return
        await self.inbox.done(update_id)
        self.processed += 1

    async def _apologise(self, payload: dict[str, Any]) -> None:
        """The update was set aside after every attempt failed: say so, once, in private chats."""
        update = Update.de_json(payload, self.application.bot)
        chat, user = update.effective_chat, update.effective_user
        if chat is None or chat.type != "private":
            return
        try:
            await self.application.bot.send_message(chat.id, render(
                messages.SOMETHING_WENT_WRONG, user.language_code if user else None))
        except TelegramError as error:
            log.warning("could not tell chat about a failed update (%s)", type(error).__name__)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


def _seconds(value: Any) -> float:
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)
