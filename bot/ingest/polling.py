"""Our own polling loop: store a batch in the inbox, then ask for the next offset; and the
handling of what the inbox holds.

python-telegram-bot's Updater confirms updates (by asking for the next offset) before any
handler has run, so a crash loses them. Here the offset moves only after the batch is committed,
and handling reads from the inbox, so nothing Telegram handed over is lost or handled twice.

Fetching and handling run side by side: the next batch is stored while the last is handled.
Each person's updates are handled in order, one at a time, in a lane of their own (a couple's
two partners share one, so their paired answers settle in the order they came); different
people's lanes run at once, so one slow answer (a voice note to download, say) holds up nobody
else, and the database and Telegram's round trips overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Hashable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application

from bot import messages
from bot.ingest.inbox import MAX_ATTEMPTS, Inbox
from bot.ingest.leader import InboxLeadership
from bot.messages import render
from bot.scheduling.http import AiohttpRequest

log = logging.getLogger(__name__)
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
INBOX_CHECK_SECONDS = 0.5
LANES = 32  # updates handled at the same time, each a different person's
BATCH = 100  # stored updates read from the inbox at a time
TAKEN_AT_MOST = 1000  # updates handed to lanes and not yet finished; more wait in the inbox
STOP_SECONDS = 10.0  # for the updates in hand to finish when the bot stops


class UpdatesRequest(AiohttpRequest):
    """The request getUpdates goes by (aiohttp, as every other request of the bot's, on one
    connection of its own), keeping the body of its latest answer, so that updates are stored
    as Telegram sent them rather than as the library writes its parsed objects out again
    (which cost more than parsing them). Only the poller asks getUpdates, one request at a
    time."""

    def __init__(self) -> None:
        super().__init__(connection_pool_size=1)
        self.last_body = b""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, body = await super().do_request(*args, **kwargs)
        self.last_body = body
        return code, body


class InboxPoller:
    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any], inbox: Inbox,
                 failed_updates: set[int], updates_request: UpdatesRequest,
                 poll_timeout: int = 25, leadership: InboxLeadership | None = None) -> None:
        self.application = application
        self.updates_request = updates_request  # the application's bot's, for getUpdates
        self.inbox = inbox
        self.leadership = leadership or InboxLeadership(inbox.db)
        self.failed_updates = failed_updates
        self.poll_timeout = poll_timeout
        self._offset: int | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._fetching: asyncio.Task[list[tuple[Update, dict[str, Any]]]] | None = None
        # Updates handed to a lane (kept until a read of the inbox that began after they were
        # finished, which no longer returns them), those finished, and each lane's queue.
        self._taken: set[int] = set()
        self._finished: set[int] = set()
        self._lanes: dict[Hashable, deque[tuple[int, dict[str, Any]]]] = {}
        self._lane_tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(LANES)
        # Updates handled and waiting to be marked so, with the mark that will cover them, and
        # the task writing the marks: what lanes finish while one mark is written goes into
        # the next, so the inbox is marked in one statement for many updates.
        self._unmarked: tuple[list[int], asyncio.Future[None]] | None = None
        # Updates this process fetched and stored, as python-telegram-bot parsed them, so that
        # handling them need not parse their stored JSON again (the inbox is still what says
        # which updates are handled: this only saves work).
        self._parsed: dict[int, tuple[Update, dict[str, Any]]] = {}
        self._marking: asyncio.Task[None] | None = None
        self.processed = 0

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        # A long poll in flight can be dropped: its updates are not confirmed until stored.
        if self._fetching is not None:
            self._fetching.cancel()

    async def run(self, *, fetch: bool = True) -> None:
        """Poll until stopped, while this process leads, handling what is stored as it comes.

        With `fetch` False (webhook mode) nothing is asked of Telegram: the webhook stores
        updates, and this loop handles what any process stored, as it arrives."""
        try:
            while await self.leadership.acquire(self._stopping):
                over = asyncio.Event()
                handler = asyncio.create_task(self._handle_while_leading(over),
                                              name="inbox-handler")
                try:
                    if fetch:
                        await self._poll_while_leading()
                    else:
                        await self._watch_while_leading()
                finally:
                    over.set()
                    self._wake.set()
                    await handler
        finally:
            await self._finish_lanes()
            await self.leadership.release()

    @property
    def busy(self) -> bool:
        """Some update is still being handled (its last words, an apology say, may be unsent)."""
        return bool(self._lane_tasks)

    def wake(self) -> None:
        """Something was stored in the inbox: handle it now rather than at the next check."""
        self._wake.set()

    async def _watch_while_leading(self) -> None:
        """Webhook mode: keep an eye on the lead while the handler works."""
        while not self._stopping.is_set() and await self.leadership.still_held():
            await self._sleep(INBOX_CHECK_SECONDS)

    async def _handle_while_leading(self, over: asyncio.Event) -> None:
        """Hand what is stored to the lanes whenever something new is stored, until `over`."""
        backoff = 0.5
        while not (over.is_set() or self._stopping.is_set()):
            self._wake.clear()
            try:
                handed = await self._hand_out()
            except Exception as error:  # the database is away: the updates wait in the inbox
                log.warning("reading the inbox failed (%s); trying again in %.1f s",
                            type(error).__name__, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            backoff = 0.5
            if handed >= BATCH:
                continue  # more may be waiting
            if len(self._taken) >= TAKEN_AT_MOST:
                await self._sleep(0.05)  # the lanes have their hands full
                continue
            # Woken by this process's fetch or webhook at once; what another process stored is
            # found at the next check.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=INBOX_CHECK_SECONDS)

    async def _poll_while_leading(self) -> None:
        backoff = 1.0
        self._offset = None
        while not self._stopping.is_set():
            if not await self.leadership.still_held():
                return
            try:
                if self._offset is None:
                    last = await self.inbox.last_update_id()
                    self._offset = last + 1 if last is not None else None
            except Exception as error:  # the database is away: ask Telegram nothing meanwhile
                log.warning("reading the inbox failed (%s); trying again in %.0f s",
                            type(error).__name__, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 60)
                continue
            self._fetching = asyncio.create_task(self._fetch())
            try:
                parsed = await self._fetching
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
            batch = [payload for _, payload in parsed]
            if batch:
                try:
                    await self.inbox.store(batch)
                except Exception as error:
                    # Not stored, so not confirmed: Telegram hands the same updates over again.
                    log.warning("storing %d updates failed (%s); fetching them again in %.0f s",
                                len(batch), type(error).__name__, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 60)
                    continue
                self._offset = max(u["update_id"] for u in batch) + 1
                if len(self._parsed) > TAKEN_AT_MOST:  # left by updates handled elsewhere
                    self._parsed.clear()
                self._parsed.update((update.update_id, (update, payload))
                                    for update, payload in parsed)
                self._wake.set()
            backoff = 1.0

    async def _fetch(self) -> list[tuple[Update, dict[str, Any]]]:
        """The next updates, as python-telegram-bot reads them and as Telegram sent them (what
        is stored: fields the library does not know yet are kept, and nothing is written out
        again from the parsed objects)."""
        parsed = await self.application.bot.get_updates(
            offset=self._offset, limit=100, timeout=self.poll_timeout,
            allowed_updates=ALLOWED_UPDATES, read_timeout=self.poll_timeout + 10)
        if not parsed:
            return []
        sent = json.loads(self.updates_request.last_body)["result"]
        if [update.update_id for update in parsed] != [payload["update_id"] for payload in sent]:
            raise RuntimeError("getUpdates answered with other updates than it parsed")
        return list(zip(parsed, sent, strict=True))

    async def process_pending(self) -> int:
        """Handle every stored, unhandled update, and wait until they are done; returns how many
        were handed out (without a running loop: at start-up, in tests)."""
        handed = 0
        while True:
            count = await self._hand_out()
            handed += count
            if count == 0 and not self._lane_tasks:
                return handed
            if self._lane_tasks:
                await asyncio.wait(set(self._lane_tasks), return_when=asyncio.FIRST_COMPLETED)

    async def _hand_out(self) -> int:
        """Give each stored update that no lane holds yet to its person's lane, oldest first;
        returns how many were handed out."""
        settled = set(self._finished)  # marked done before this read began: it cannot return them

        async def read(connection: AsyncConnection) -> tuple[list[tuple[int, dict[str, Any]]],
                                                             dict[int, int]]:
            """What waits, and the couples of those who sent it (a reading that may be run
            twice, in a transaction shared with what is being written at the moment)."""
            rows = await self.inbox.read_pending(connection, BATCH, skip=self._taken,
                                                 known=self._parsed)
            fresh = [(update_id, payload) for update_id, stored in rows if update_id not in
                     self._taken and (payload := stored or self._payload(update_id))]
            people = {person for _, payload in fresh if (person := sender_of(payload)) is not None}
            return fresh, (await self.inbox.read_couples(connection, people) if people else {})

        fresh, couples = await self.inbox.db.together(read)
        self._taken -= settled
        self._finished -= settled
        if not fresh:
            return 0
        for update_id, payload in fresh:
            person = sender_of(payload)
            key: Hashable = ("update", update_id) if person is None else (
                ("couple", couples[person]) if person in couples else ("person", person))
            self._taken.add(update_id)
            queue = self._lanes.get(key)
            if queue is None:
                queue = self._lanes[key] = deque()
                task = asyncio.create_task(self._lane(key, queue), name="inbox-lane")
                self._lane_tasks.add(task)
                task.add_done_callback(self._lane_tasks.discard)
            queue.append((update_id, payload))
        return len(fresh)

    def _payload(self, update_id: int) -> dict[str, Any] | None:
        fetched = self._parsed.get(update_id)  # None if the cache was cleared meanwhile: read again
        return fetched[1] if fetched else None

    async def _lane(self, key: Hashable, queue: deque[tuple[int, dict[str, Any]]]) -> None:
        """One person's updates, in order: the next waits until the one before is finished."""
        try:
            while queue and not self._stopping.is_set():
                update_id, payload = queue[0]
                async with self._slots:
                    retry_in = await self._process(update_id, payload)
                if retry_in is None:
                    queue.popleft()
                    self._finished.add(update_id)
                else:  # tried again after a pause, before this person's next update
                    await self._sleep(retry_in)
        except Exception as error:  # the database is away: left in the inbox, handled later
            log.warning("handling update %d failed (%s); it stays in the inbox",
                        queue[0][0] if queue else 0, type(error).__name__)
        finally:
            # What is left was not handled: it stays in the inbox, to be read again.
            del self._lanes[key]
            for update_id, _ in queue:
                self._taken.discard(update_id)

    async def _finish_lanes(self) -> None:
        """Let the updates in hand finish (a lane stops after its current one)."""
        if not self._lane_tasks:
            return
        _, late = await asyncio.wait(set(self._lane_tasks), timeout=STOP_SECONDS)
        for task in late:  # cut off mid-update: replayed from the inbox, which is harmless
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def _process(self, update_id: int, payload: dict[str, Any]) -> float | None:
        """Handle one update. None when it is finished with (handled, or set aside after every
        attempt failed); otherwise the pause before trying it again."""
        self.failed_updates.discard(update_id)
        fetched = self._parsed.get(update_id)
        try:
            update = fetched[0] if fetched else Update.de_json(payload, self.application.bot)
        except Exception as error:
            # Retrying cannot mend it: set it aside (payload cleared) and carry on.
            log.warning("update %d is malformed (%s); set aside", update_id, type(error).__name__)
            await self.inbox.done(update_id, error="malformed update")
            return None
        retry_in = await self._handle(update_id, update, payload)
        if retry_in is None:
            self._parsed.pop(update_id, None)
        return retry_in

    async def _handle(self, update_id: int, update: Update,
                      payload: dict[str, Any]) -> float | None:
        try:
            await self.application.process_update(update)
        except Exception as error:
            self.failed_updates.add(update_id)
            log.warning("update %d failed (%s)", update_id, type(error).__name__)
        if update_id in self.failed_updates:
            attempts = await self.inbox.failed(update_id, "handler error")
            if attempts == 0 or attempts >= MAX_ATTEMPTS:  # gone, or every attempt failed
                if attempts:
                    await self._apologise(payload)
                return None
            return min(0.2 * attempts, 2)
        await self._mark_handled(update_id)
        self.processed += 1
        return None

    async def _mark_handled(self, update_id: int) -> None:
        """Mark the update handled in the inbox, with whatever else was handled meanwhile.

        Its effects are committed and its thanks said by now. If the database is away, this
        process still knows the update is handled: it keeps the update in hand (no other read
        of the inbox hands it out) and writes the mark once the database is back, so a restart
        of the database does not say the thanks twice. Only a process that stops or dies before
        the mark is written leaves it to be replayed, which stores nothing twice and says the
        thanks again."""
        backoff = 0.5
        while True:
            try:
                await self._mark_with_others(update_id)
                return
            except Exception as error:
                if self._stopping.is_set():
                    raise
                log.warning("marking update %d handled failed (%s); trying again in %.1f s",
                            update_id, type(error).__name__, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 10)

    async def _mark_with_others(self, update_id: int) -> None:
        if self._unmarked is None:
            written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            # Retrieved here too, so a failure no lane is left to hear of is not logged as lost.
            written.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._unmarked = ([], written)
        ids, written = self._unmarked
        ids.append(update_id)
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._write_marks(), name="inbox-marks")
        await asyncio.shield(written)

    async def _write_marks(self) -> None:
        while self._unmarked is not None:
            (ids, written), self._unmarked = self._unmarked, None
            try:
                await self.inbox.done_many(ids)
            except Exception as error:  # each lane hears of it, and leaves its update unmarked
                written.set_exception(error)
            else:
                written.set_result(None)

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


def sender_of(payload: dict[str, Any]) -> int | None:
    """Who sent an update (its lane), from the stored JSON; None for a shape we do not know."""
    for kind in ALLOWED_UPDATES:
        part = payload.get(kind)
        if isinstance(part, dict):
            sender = part.get("from")
            if isinstance(sender, dict) and isinstance(sender.get("id"), int):
                return int(sender["id"])
    return None
