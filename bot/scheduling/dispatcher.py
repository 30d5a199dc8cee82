"""Dispatcher: claims due deliveries, sends them under Telegram's limits, records the outcome.

A claim marks rows `sending` with a lease, in this dispatcher's name, in one transaction
(PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one writer at a time). While a claimed row waits
its turn under the rate limit, its lease is renewed, so a live process keeps what it holds
however long the wait; only the holder may renew or record a row. A process that dies mid-send
stops renewing, and its rows are sent again once their lease expires, so duplicates are bounded
by what was in flight. The catch-up policy is applied here, at send time: a prompt later than
the grace period is marked missed, never sent in a burst after downtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import BigInteger, Select, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from bot.clock import Clock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.models import Client, ClientStatus, Delivery, DeliveryStatus, Therapist
from bot.services.controls import can_receive, is_paused, quiet_release
from bot.services.onboarding import consent_version, renewal_text

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 300
CONSENT_HOLD = timedelta(minutes=15)  # how often a prompt held for consent looks again
RECORD_SECONDS = 0.2
WINDOW_SECONDS = 2.0  # sends kept claimed ahead, in seconds of the overall rate
MIN_WINDOW = 10
MIN_PAUSE_SECONDS = 0.01
STOP_GRACE_SECONDS = 3.0
CANDIDATES_PER_CLAIM = 4
RENEWALS_PER_LEASE = 3  # a lease is renewed this often within its length
IDS_PER_STATEMENT = 500


@dataclass(frozen=True)
class Outbound:
    """A prompt ready to send: plain data, so sending needs no database session."""

    delivery_id: int
    chat_id: int
    language: str | None
    prompt: dict[str, Any]


@dataclass(frozen=True)
class Sent:
    """Telegram took the message: its id, and when it answered (the prompt's sent time)."""

    message_id: int
    at: datetime


@dataclass(frozen=True)
class ConsentRequest:
    """The updated consent, sent in place of a prompt to a client who agreed to an older one."""

    client_id: int
    chat_id: int
    language: str | None
    text: str


class SendError(Exception):
    """Base of what a Sender raises; the message is an error class name, never client text."""


class RetryLater(SendError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g}s")
        self.seconds = seconds


class Unreachable(SendError):
    """The client blocked the bot or the chat is gone."""


class Rejected(SendError):
    """Telegram refused this message for good."""


class Transient(SendError):
    """A network error or a server error: worth trying again."""


class Sender(Protocol):
    async def send_prompt(self, item: Outbound) -> int:
        """Send the prompt; return Telegram's message id."""
        ...

    async def send_reminder(self, chat_id: int, reply_to_message_id: int,
                            language: str | None) -> int:
        ...

    async def send_consent_request(self, item: ConsentRequest) -> int:
        ...


@dataclass
class TickReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    missed: int = 0
    skipped: int = 0
    postponed: int = 0
    held: int = 0  # waiting for the client to agree to an updated consent
    recovered: int = 0
    overtaken: int = 0  # sent after the lease had passed to another dispatcher: not recorded
    errors: dict[str, int] = field(default_factory=dict)
    next_due: datetime | None = None  # when nothing was due: when the next prompt falls due


class Dispatcher:
    def __init__(self, db: Database, sender: Sender, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.sender = sender
        self.clock = clock
        self.settings = settings
        self._lease = timedelta(seconds=settings.send_lease_seconds)
        self._renew_every = settings.send_lease_seconds / RENEWALS_PER_LEASE
        # Whose lease a claimed row is under: this dispatcher's, and no other's.
        self.owner = secrets.token_hex(8)
        self._held: set[int] = set()  # rows claimed here and not yet recorded
        self.sent_total = 0
        # The consent in force, worked out once: it renders and hashes the whole consent text.
        self._consent_version = consent_version(settings)

    async def tick(self) -> TickReport:
        """One round: claim what is due, send it, record what happened."""
        report = TickReport()
        batch = await self._claim(report)
        if batch:
            sending = asyncio.ensure_future(asyncio.gather(*(self._send(item) for item in batch)))
            while not sending.done():
                await asyncio.wait([sending], timeout=self._renew_every)
                if not sending.done():
                    await self._renew_leases()
            await self._record(batch, sending.result(), report)
        return report

    async def run_until_idle(self, max_rounds: int = 1000) -> TickReport:
        """Tick until nothing due is left (tests, the demo, `prompt send`)."""
        total = TickReport()
        for _ in range(max_rounds):
            report = await self.tick()
            for name in ("claimed", "sent", "retried", "failed", "missed", "skipped",
                         "postponed", "held", "recovered", "overtaken"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            if report.claimed == 0:
                break
        return total

    def _fair_order(self, now: datetime, limit: int) -> Select[tuple[int]]:
        """Due rows by the minute they fell due, and within a minute one therapist's client at a
        time in turn, so that a large practice's evening check-ins cannot hold back a small
        one's. (FOR UPDATE may not share a query level with a window function, so the claim
        locks these ids in a second statement.)"""
        if self.db.is_sqlite:  # stored as text, "YYYY-MM-DD HH:MM:SS.ffffff"
            minute: Any = func.substr(Delivery.due_at, 1, 16)
        else:
            minute = func.date_trunc("minute", Delivery.due_at)
        turn = func.row_number().over(partition_by=(minute, Client.therapist_id),
                                      order_by=(Delivery.due_at, Delivery.id))
        return (select(Delivery.id).join(Client, Client.id == Delivery.client_id)
                .where(Delivery.status == DeliveryStatus.PENDING, Delivery.due_at <= now)
                .order_by(minute, turn, Delivery.due_at, Delivery.id).limit(limit))

    async def _lock_in_turn(self, session: AsyncSession, now: datetime,
                            limit: int) -> list[tuple[Delivery, Client, str]]:
        """Lock up to `limit` due rows in fair order, skipping those another process holds."""
        if self.db.is_sqlite:  # one writer at a time: nobody else holds any
            ids = list(await session.scalars(self._fair_order(now, limit)))
            rows = [(row[0], row[1], row[2]) for row in (await session.execute(
                self._with_people().where(Delivery.id.in_(ids)))).all()]
            place = {delivery_id: n for n, delivery_id in enumerate(ids)}
            return sorted(rows, key=lambda row: place[row[0].id])
        # Candidates enough for a few processes claiming at once: each takes the first ones
        # in turn that nobody else has locked.
        ids = list(await session.scalars(self._fair_order(now, limit * CANDIDATES_PER_CLAIM)))
        if not ids:
            return []
        turn = func.array_position(bindparam("ids", ids, type_=ARRAY(BigInteger)), Delivery.id)
        return [(row[0], row[1], row[2]) for row in (await session.execute(
            self._with_people()
            .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING)
            .order_by(turn).limit(limit)
            .with_for_update(skip_locked=True, of=Delivery))).all()]

    @staticmethod
    def _with_people() -> Select[tuple[Delivery, Client, str]]:
        """Due rows with their client and the therapist's name (for an updated consent)."""
        return (select(Delivery, Client, Therapist.display_name)
                .join(Client, Client.id == Delivery.client_id)
                .join(Therapist, Therapist.id == Client.therapist_id))

    async def _claim(self, report: TickReport,
                     limit: int | None = None) -> list[Outbound | ConsentRequest]:
        now = self.clock.now()
        async with self.db.transaction() as session:
            # Rows whose lease ran out belong to a process that died. Locked, not blindly
            # updated, so that two processes recovering at once never wait on each other.
            stale = list(await session.scalars(
                select(Delivery.id)
                .where(Delivery.status == DeliveryStatus.SENDING,
                       Delivery.claimed_at < now - self._lease)
                .limit(self.settings.dispatch_batch)
                .with_for_update(skip_locked=True)))
            if stale:
                await session.execute(update(Delivery).where(Delivery.id.in_(stale)).values(
                    status=DeliveryStatus.PENDING, claimed_at=None, claimed_by=None))
            report.recovered = len(stale)
            limit = limit or self.settings.dispatch_batch
            rows = await self._lock_in_turn(session, now, limit)
            batch = []
            for delivery, client, therapist in rows:
                item = self._admit(delivery, client, therapist, now, report)
                if item is not None:
                    batch.append(item)
            report.claimed = sum(isinstance(item, Outbound) for item in batch)
            if not rows:
                report.next_due = await session.scalar(select(func.min(Delivery.due_at)).where(
                    Delivery.status == DeliveryStatus.PENDING, Delivery.due_at > now))
        self._held.update(item.delivery_id for item in batch if isinstance(item, Outbound))
        return batch

    def _admit(self, delivery: Delivery, client: Client, therapist: str, now: datetime,
               report: TickReport) -> Outbound | ConsentRequest | None:
        """Decide at send time: send, postpone, skip or mark missed."""
        # A notice (a partner's shared answer, say) is news, not a stale prompt: it is not
        # dropped after downtime, only after its own expiry; quiet hours still hold it back.
        late = now - delivery.due_at > self.settings.grace and not delivery.prompt.get("notice")
        if late or delivery.expires_at <= now:
            delivery.status, delivery.closed_at = DeliveryStatus.MISSED, now
            delivery.last_error = "later than the catch-up grace"
            report.missed += 1
            return None
        if not can_receive(client, now):
            delivery.status, delivery.closed_at = DeliveryStatus.SKIPPED, now
            delivery.last_error = "paused" if is_paused(client, now) else f"client {client.status}"
            report.skipped += 1
            return None
        assert client.telegram_user_id is not None
        if client.consent_version != self._consent_version:
            # Held, not sent, until they agree to the updated consent (asked once, in its place).
            delivery.due_at = now + CONSENT_HOLD
            report.held += 1
            version = self._consent_version
            if client.consent_asked_version == version:
                return None
            client.consent_asked_version = version
            return ConsentRequest(client.id, client.telegram_user_id, client.language_code,
                                  renewal_text(client.language_code, therapist, self.settings))
        release = quiet_release(client, now)
        if release > now:  # quiet hours changed since planning: wait for the morning
            delivery.due_at = release
            delivery.expires_at = max(delivery.expires_at, release + self.settings.expiry)
            report.postponed += 1
            return None
        delivery.status, delivery.claimed_at = DeliveryStatus.SENDING, now
        delivery.claimed_by = self.owner
        delivery.attempts += 1
        return Outbound(delivery.id, client.telegram_user_id, client.language_code,
                        delivery.prompt)

    async def _send(self, item: Outbound | ConsentRequest) -> Sent | SendError:
        try:
            if isinstance(item, ConsentRequest):
                message_id = await self.sender.send_consent_request(item)
            else:
                message_id = await self.sender.send_prompt(item)
            return Sent(message_id, self.clock.now())
        except SendError as error:
            return error
        except Exception as error:
            log.exception("unexpected error sending %s", type(item).__name__)
            return Transient(type(error).__name__)

    async def run(self, stopping: asyncio.Event) -> None:
        """Send what is due until `stopping` is set (the bot's dispatch loop).

        Up to `window` sends (two seconds' worth) are in flight: more are claimed, a batch at
        a time, as soon as a batch's worth (or half the window) has gone, so the rate limiter
        never waits for a claim, and finished sends are recorded every fraction of a second, so
        a crash re-sends little. The lease of every row still held is renewed a few times per
        lease. With nothing due, the loop sleeps until the next prompt falls due (at most the
        dispatch interval). A failed claim, renewal or record (the database away) is tried
        again; an unrecorded send stays in memory until it is recorded.
        """
        window, batch_size = self.window, self.settings.dispatch_batch
        refill = min(batch_size, max(1, window // 2))
        in_flight: dict[asyncio.Task[Sent | SendError], Outbound | ConsentRequest] = {}
        finished: list[tuple[Outbound | ConsentRequest, Sent | SendError]] = []
        idle = max(self.settings.dispatch_interval_seconds, 0.05)
        loop = asyncio.get_running_loop()
        stop_deadline = 0.0
        renew_at = loop.time() + self._renew_every
        while not stopping.is_set() or in_flight or finished:
            if self._held and loop.time() >= renew_at and await self._renew_leases():
                renew_at = loop.time() + self._renew_every
            claimed, pause = 0, idle
            if not stopping.is_set() and window - len(in_flight) >= refill:
                claim = TickReport()
                try:
                    batch = await self._claim(
                        claim, limit=min(batch_size, window - len(in_flight)))
                except Exception as error:
                    log.warning("claiming due prompts failed (%s)", type(error).__name__)
                    batch = []
                # Rows closed as missed or skipped were work too: more may be due at once.
                claimed = (len(batch) + claim.missed + claim.skipped + claim.postponed
                           + claim.held)
                if claim.next_due is not None:
                    pause = min(idle, max(MIN_PAUSE_SECONDS,
                                          (claim.next_due - self.clock.now()).total_seconds()))
                for item in batch:
                    in_flight[asyncio.create_task(self._send(item))] = item
            if stopping.is_set() and in_flight:
                stop_deadline = stop_deadline or loop.time() + STOP_GRACE_SECONDS
                if loop.time() > stop_deadline:  # still waiting for a slot: give them back
                    for task in in_flight:
                        task.cancel()
            if in_flight:
                done, _ = await asyncio.wait(in_flight, timeout=RECORD_SECONDS)
                finished += [(in_flight.pop(task), Transient("stopped") if task.cancelled()
                              else task.result()) for task in done]
            if finished:
                report = TickReport()
                try:
                    await self._record([item for item, _ in finished],
                                       [outcome for _, outcome in finished], report)
                except Exception as error:
                    log.warning("recording sends failed (%s); trying again", type(error).__name__)
                    await self._pause(stopping, RECORD_SECONDS)
                    if stopping.is_set() and not in_flight:
                        return  # unrecorded sends are re-sent after the lease: bounded
                    continue
                finished.clear()
                if report.sent:
                    log.debug("sent %d prompts", report.sent)
                if report.overtaken:
                    log.warning("%d prompts sent after their lease passed to another process",
                                report.overtaken)
                self.sent_total += report.sent
            elif not in_flight and not claimed:
                await self._pause(stopping, pause)

    @property
    def window(self) -> int:
        """Sends kept in flight: two seconds' worth at the overall rate (claimed a batch at a
        time). A crash re-sends only those already sent and not yet recorded; the rest were
        never sent, and go out once their lease has run out."""
        return max(MIN_WINDOW, int(self.settings.rate_limit_per_second * WINDOW_SECONDS))

    @staticmethod
    async def _pause(stopping: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=seconds)

    async def _renew_leases(self) -> bool:
        """Move on the lease of every row this dispatcher still holds (waiting for its turn,
        or sent and not yet recorded), so that no other process takes it over meanwhile.
        A row another process has taken over is no longer ours, and is left alone. False when
        the database is away (tried again at the next turn)."""
        held = sorted(self._held)
        if not held:
            return True
        now = self.clock.now()
        try:
            async with self.db.transaction() as session:
                for start in range(0, len(held), IDS_PER_STATEMENT):
                    await session.execute(update(Delivery).where(
                        Delivery.id.in_(held[start:start + IDS_PER_STATEMENT]),
                        Delivery.claimed_by == self.owner,
                        Delivery.status == DeliveryStatus.SENDING,
                    ).values(claimed_at=now))
        except Exception as error:
            log.warning("renewing leases failed (%s)", type(error).__name__)
            return False
        return True

    async def _record(self, batch: Sequence[Outbound | ConsentRequest],
                      outcomes: Sequence[Sent | SendError], report: TickReport) -> None:
        now = self.clock.now()
        ids = [item.delivery_id for item in batch if isinstance(item, Outbound)]
        async with self.db.transaction() as session:
            # Locked (PostgreSQL), so that no claim takes a row over while its send is recorded;
            # the prompt itself is not read back (it is sealed, and the item has it).
            loaded = {d.id: d for start in range(0, len(ids), IDS_PER_STATEMENT)
                      for d in await session.scalars(
                          select(Delivery).options(defer(Delivery.prompt))
                          .where(Delivery.id.in_(ids[start:start + IDS_PER_STATEMENT]))
                          .with_for_update())}
            for item, outcome in zip(batch, outcomes, strict=True):
                if isinstance(item, ConsentRequest):
                    if isinstance(outcome, SendError):  # not asked after all: ask on the next try
                        await session.execute(update(Client).where(Client.id == item.client_id)
                                              .values(consent_asked_version=None))
                    continue
                delivery = loaded.get(item.delivery_id)
                if delivery is not None:
                    await self._record_one(session, delivery, item, outcome, now, report)
        self._held.difference_update(ids)

    async def _record_one(self, session: AsyncSession, delivery: Delivery, item: Outbound,
                          outcome: Sent | SendError, now: datetime, report: TickReport) -> None:
        if delivery.claimed_by != self.owner:
            # The lease ran out (this process stalled) and nobody has claimed the row again:
            # the send that happened is the one to keep. Otherwise another dispatcher holds
            # it (or has sent it): it records its own send, never this one.
            unclaimed = delivery.status is DeliveryStatus.PENDING and delivery.claimed_by is None
            if not (isinstance(outcome, Sent) and unclaimed):
                report.overtaken += isinstance(outcome, Sent)
                return
        if isinstance(outcome, Sent):
            delivery.telegram_message_id, delivery.sent_at = outcome.message_id, outcome.at
            delivery.claimed_at = delivery.claimed_by = None
            # /stop may have closed it while it was in flight; then it stays closed.
            if delivery.status in (DeliveryStatus.SENDING, DeliveryStatus.PENDING):
                if item.prompt.get("notice"):
                    delivery.status, delivery.closed_at = DeliveryStatus.NOTIFIED, now
                else:
                    delivery.status = DeliveryStatus.SENT
            report.sent += 1
            return
        if delivery.status is not DeliveryStatus.SENDING:
            return
        name = type(outcome).__name__
        report.errors[name] = report.errors.get(name, 0) + 1
        delivery.claimed_at, delivery.claimed_by = None, None
        delivery.last_error = str(outcome)[:200] or name
        if isinstance(outcome, RetryLater) or (
                isinstance(outcome, Transient)
                and delivery.attempts < self.settings.send_max_attempts):
            wait = outcome.seconds if isinstance(outcome, RetryLater) else min(
                2 ** delivery.attempts, MAX_BACKOFF_SECONDS)
            delivery.status = DeliveryStatus.PENDING
            delivery.due_at = now + timedelta(seconds=wait)
            report.retried += 1
            return
        delivery.status, delivery.closed_at = DeliveryStatus.FAILED, now
        report.failed += 1
        if isinstance(outcome, Unreachable):
            await self._mark_unreachable(session, delivery.client_id, now)

    async def _mark_unreachable(self, session: AsyncSession, client_id: int,
                                now: datetime) -> None:
        await session.execute(update(Client).where(Client.id == client_id,
                                                   Client.status == ClientStatus.ACTIVE)
                              .values(status=ClientStatus.UNREACHABLE))
        await session.execute(update(Delivery).where(
            Delivery.client_id == client_id, Delivery.status == DeliveryStatus.PENDING,
        ).values(status=DeliveryStatus.SKIPPED, closed_at=now, last_error="client unreachable"))
        log.info("client %d blocked the bot; marked unreachable", client_id)

    async def housekeeping(self) -> dict[str, int]:
        """Close expired prompts and send the one gentle reminder an open prompt may get."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            expired = await session.execute(update(Delivery).where(
                Delivery.status == DeliveryStatus.SENT, Delivery.expires_at <= now,
            ).values(status=DeliveryStatus.EXPIRED, closed_at=now, reminder_at=None))
            await session.execute(update(Delivery).where(
                Delivery.status == DeliveryStatus.ANSWERED, Delivery.closed_at.is_(None),
                Delivery.expires_at <= now).values(closed_at=now))
            due = (await session.execute(
                select(Delivery, Client).join(Client, Client.id == Delivery.client_id)
                .where(Delivery.status == DeliveryStatus.SENT, Delivery.reminder_at <= now,
                       Delivery.closed_at.is_(None))
                .order_by(Delivery.reminder_at).limit(self.settings.dispatch_batch))).all()
            reminders: list[tuple[int, int, int, str | None]] = []
            for delivery, client in due:
                if not can_receive(client, now) or delivery.telegram_message_id is None:
                    delivery.reminder_at = None
                    continue
                assert client.telegram_user_id is not None
                release = quiet_release(client, now)
                if release > now:
                    delivery.reminder_at = release if release < delivery.expires_at else None
                    continue
                # Claimed by clearing reminder_at: a nudge is sent at most once, even on a crash.
                delivery.reminder_at = None
                reminders.append((delivery.id, client.telegram_user_id,
                                  delivery.telegram_message_id, client.language_code))

        sent = 0
        for delivery_id, chat_id, message_id, language in reminders:
            try:
                reminder_id = await self.sender.send_reminder(chat_id, message_id, language)
            except SendError as error:
                log.info("reminder for delivery %d not sent (%s)", delivery_id,
                         type(error).__name__)
                continue
            async with self.db.transaction() as session:
                await session.execute(update(Delivery).where(Delivery.id == delivery_id)
                                      .values(reminder_message_id=reminder_id))
            sent += 1
        return {"expired": expired.rowcount or 0, "reminders": sent}  # type: ignore[attr-defined]
