"""Planner: turns enrolments into deliveries (the outbox) for the hours ahead.

It walks each active enrolment from where it last stopped (`planned_through`) to the planning
horizon, in the client's time zone, and writes one delivery per step occurrence. A dedupe key
per enrolment, step and local day makes planning idempotent: a restart or a second process that
plans the same span creates nothing twice (the insert skips a key another process wrote first).

Enrolments are planned a chunk at a time with a fixed number of queries per chunk, whatever
the number of enrolments or their history: the keys already planned are looked up together,
and how far each step has drawn from its pool is kept on the enrolment (`pool_draws`).

A couple's enrolment becomes one pair group per step and local day, with one delivery per
partner at the step's wall time in that partner's own zone (quiet hours per partner), and one
expiry for both: the later of the two. See the README's Couples section.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.encryption import Sealed, SealedOnce
from bot.db.engine import Database, insert_on_conflict
from bot.db.models import (
    Client,
    ClientStatus,
    Couple,
    CouplePartner,
    Delivery,
    DeliveryStatus,
    Enrolment,
    PairGroup,
    PairKind,
    PairState,
)
from bot.library import Library
from bot.library.schema import Program, Prompt, Step
from bot.scheduling.timing import Occurrence, occurrences
from bot.services.controls import QuietTimes, quiet_release

log = logging.getLogger(__name__)
CHUNK = 500  # enrolments per transaction: keeps write locks short on SQLite
REPLAN_SLACK = 0.25  # of the planning horizon
KEYS_PER_QUERY = 5000  # bound parameters in one IN (...): under SQLite's limit
# Partners' local days differ by at most 26 hours (UTC-12 to UTC+14): look this far either side.
ZONE_MARGIN = timedelta(days=2)


CUSTOM_PROGRAM = "custom"
PROMPT_COLUMN = cast(Sealed, Delivery.__table__.c.prompt.type)


def program_of(enrolment: Enrolment | PlannedEnrolment,
               library: Library) -> tuple[Program, Mapping[str, Prompt]] | None:
    """The program an enrolment follows and the prompts it may draw from; None if the library
    no longer has it. A therapist's custom prompt carries its own one-step program."""
    if enrolment.custom:
        prompt = Prompt.model_validate(enrolment.custom["prompt"])
        step = Step.model_validate(enrolment.custom["step"])
        return Program(key=CUSTOM_PROGRAM, title=prompt.key, steps=(step,)), {prompt.key: prompt}
    program = library.programs.get(enrolment.program_key)
    return (program, library.prompts) if program else None


def first_start(enrolment: Enrolment | PlannedEnrolment) -> datetime | None:
    """When steps timed from the program's start count from: its start, unless this run
    continues an earlier one (moved to a new medicine session), whose start steps have fired."""
    return None if enrolment.continues_id is not None else enrolment.starts_at


def prompt_snapshot(prompt: Prompt) -> dict[str, object]:
    """The prompt as stored on a delivery, so what was sent stays true after library edits."""
    return prompt.model_dump(mode="json", exclude_defaults=False)


@dataclass(frozen=True, slots=True)
class DeliveryTimes:
    """When a delivery falls due (out of quiet hours), when it is reminded and when it expires."""

    due_at: datetime
    reminder_at: datetime | None
    expires_at: datetime

    @classmethod
    def of(cls, client: QuietTimes, scheduled_for: datetime, settings: Settings) -> DeliveryTimes:
        due = quiet_release(client, scheduled_for)
        expires = due + settings.expiry
        reminder = quiet_release(client, due + settings.reminder_after)
        return cls(due, reminder if reminder < expires else None, expires)


def delivery_values(client: Client | PlannedClient, prompt: Prompt, *, scheduled_for: datetime,
                    settings: Settings, enrolment_id: int | None = None,
                    dedupe_key: str | None = None,
                    snapshot: dict[str, object] | SealedOnce | None = None,
                    times: DeliveryTimes | None = None) -> dict[str, Any]:
    """A delivery's columns, its due time moved out of quiet hours, reminder and expiry set
    (`times`, when the caller has already worked them out for this client and moment)."""
    times = times or DeliveryTimes.of(client, scheduled_for, settings)
    return {
        "client_id": client.id, "enrolment_id": enrolment_id, "dedupe_key": dedupe_key,
        "prompt_key": prompt.key,
        "prompt": snapshot if snapshot is not None else prompt_snapshot(prompt),
        "scheduled_for": scheduled_for, "due_at": times.due_at, "expires_at": times.expires_at,
        "reminder_at": times.reminder_at,
        "status": DeliveryStatus.PENDING, "attempts": 0, "progress": 0,
    }


def new_delivery(client: Client, prompt: Prompt, *, scheduled_for: datetime, settings: Settings,
                 enrolment_id: int | None = None, dedupe_key: str | None = None) -> Delivery:
    """A delivery with its due time moved out of quiet hours and its reminder and expiry set."""
    return Delivery(**delivery_values(client, prompt, scheduled_for=scheduled_for,
                                      settings=settings, enrolment_id=enrolment_id,
                                      dedupe_key=dedupe_key))


@dataclass(slots=True)
class PlannedClient:
    """What planning needs of a client: not their name (kept sealed)."""

    id: int
    timezone: str | None
    quiet_start: str
    quiet_end: str


@dataclass(slots=True)
class PlannedEnrolment:
    """An enrolment as planning reads and moves it on: plain rows, not ORM objects, which cost
    more to build than the planning itself. Its progress is written back in one statement."""

    id: int
    program_key: str
    custom: dict[str, Any] | None
    anchor_at: datetime | None
    starts_at: datetime
    ends_at: datetime | None
    planned_through: datetime | None
    pool_draws: dict[str, int] | None
    continues_id: int | None


ENROLMENT_COLUMNS = tuple(getattr(Enrolment, field.name)
                          for field in dataclasses.fields(PlannedEnrolment))
CLIENT_COLUMNS = tuple(getattr(Client, field.name) for field in dataclasses.fields(PlannedClient))


@dataclass
class _Due:
    """One occurrence of a step that planning may turn into a delivery."""

    enrolment: PlannedEnrolment
    client: PlannedClient
    prompts: Mapping[str, Prompt]  # the library's, or a custom enrolment's own
    index: int
    step: Step
    occurrence: Occurrence
    key: str


class Planner:
    def __init__(self, db: Database, library: Library, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.library = library
        self.clock = clock
        self.settings = settings
        self._snapshots: dict[str, SealedOnce] = {}  # a library prompt as stored, sealed once
        self._times: dict[tuple[str, int, str, datetime, datetime], list[Occurrence]] = {}
        # A delivery's due, reminder and expiry times, the same for every client with one zone
        # and one night at one moment (most of a practice's evening check-in).
        self._delivery_times: dict[tuple[str | None, str, str, datetime], DeliveryTimes] = {}

    async def plan(self, client_ids: Sequence[int] | None = None) -> int:
        """Plan every active enrolment (or those of some clients); returns deliveries created."""
        now = self.clock.now()
        horizon = now + self.settings.horizon
        # An enrolment planned to within this of the horizon waits for a later run: each is
        # walked a few times a day, not every ten minutes, and is always planned well ahead.
        slack = self.settings.horizon * REPLAN_SLACK
        self._snapshots.clear()  # the library may have been edited since the last run
        self._times.clear()
        self._delivery_times.clear()
        created, after_id = 0, 0
        while True:
            async with self.db.transaction() as session:
                query = (
                    select(*ENROLMENT_COLUMNS, *CLIENT_COLUMNS)
                    .join(Client, Client.id == Enrolment.client_id)
                    .where(Enrolment.id > after_id, Enrolment.ended_at.is_(None),
                           Client.status == ClientStatus.ACTIVE, Client.timezone.is_not(None),
                           or_(Enrolment.planned_through.is_(None),
                               Enrolment.planned_through < horizon - slack),
                           or_(Enrolment.ends_at.is_(None), Enrolment.ends_at > now),
                           or_(Enrolment.ends_at.is_(None), Enrolment.planned_through.is_(None),
                               Enrolment.planned_through < Enrolment.ends_at))
                    .order_by(Enrolment.id).limit(CHUNK))
                if client_ids is not None:
                    query = query.where(Enrolment.client_id.in_(client_ids))
                split = len(ENROLMENT_COLUMNS)
                rows = [(PlannedEnrolment(*row[:split]), PlannedClient(*row[split:]))
                        for row in (await session.execute(query)).all()]
                created += await self._plan_chunk(session, rows, now, horizon)
            if len(rows) < CHUNK:
                break
            after_id = rows[-1][0].id
        created += await self._plan_couples(client_ids, now, horizon)
        if created:
            log.info("planned %d deliveries", created)
        return created

    async def _plan_chunk(self, session: AsyncSession,
                          rows: list[tuple[PlannedEnrolment, PlannedClient]],
                          now: datetime, horizon: datetime) -> int:
        created = await self._plan_rows(session, rows, now, horizon)
        # Most enrolments of a chunk end up planned to the same moment with the same draws: one
        # statement for each such group rather than one per enrolment.
        groups: dict[tuple[datetime | None, tuple[tuple[str, int], ...] | None], list[int]] = {}
        for enrolment, _ in rows:
            draws = enrolment.pool_draws
            key = (enrolment.planned_through, None if draws is None else tuple(sorted(draws.items())))
            groups.setdefault(key, []).append(enrolment.id)
        for (through, drawn), ids in groups.items():
            await session.execute(update(Enrolment).where(Enrolment.id.in_(ids)).values(
                planned_through=through, pool_draws=None if drawn is None else dict(drawn)))
        return created

    async def _plan_rows(self, session: AsyncSession,
                         rows: list[tuple[PlannedEnrolment, PlannedClient]],
                         now: datetime, horizon: datetime) -> int:
        due: list[_Due] = []
        for enrolment, client in rows:
            due += self._occurrences(enrolment, client, now, horizon)
        keys = [item.key for item in due]
        existing: set[str] = set()
        for start in range(0, len(keys), KEYS_PER_QUERY):
            existing.update(await session.scalars(select(Delivery.dedupe_key).where(
                Delivery.dedupe_key.in_(keys[start:start + KEYS_PER_QUERY]))))
        fresh = [item for item in due if item.key not in existing]
        await self._load_draws([item.enrolment for item in fresh if item.step.pool], session)
        values = []
        for item in fresh:
            prompt_key = self._draw(item)
            prompt = item.prompts.get(prompt_key)
            if prompt is None:
                continue
            snapshot: dict[str, object] | SealedOnce
            if item.prompts is self.library.prompts:  # a custom prompt is its enrolment's own
                snapshot = self._snapshots.get(prompt_key) or self._snapshots.setdefault(
                    prompt_key, PROMPT_COLUMN.seal_once(prompt_snapshot(prompt)))
            else:
                snapshot = prompt_snapshot(prompt)
            client, at = item.client, item.occurrence.at
            times_key = (client.timezone, client.quiet_start, client.quiet_end, at)
            times = self._delivery_times.get(times_key)
            if times is None:
                times = self._delivery_times[times_key] = DeliveryTimes.of(client, at, self.settings)
            values.append(delivery_values(
                client, prompt, scheduled_for=at, settings=self.settings,
                enrolment_id=item.enrolment.id, dedupe_key=item.key, snapshot=snapshot,
                times=times))
        if values:
            insert = insert_on_conflict(self.db.engine.dialect)
            # Another process planning the same span at once may have written a key first.
            await session.execute(
                insert(Delivery.__table__).on_conflict_do_nothing(index_elements=["dedupe_key"]),
                values)
        return len(values)

    async def _plan_couples(self, client_ids: Sequence[int] | None, now: datetime,
                            horizon: datetime) -> int:
        created = 0
        async with self.db.transaction() as session:
            query = (select(Enrolment, Couple).join(Couple, Couple.id == Enrolment.couple_id)
                     .where(Enrolment.ended_at.is_(None), Couple.active_at.is_not(None),
                            Couple.ended_at.is_(None),
                            or_(Enrolment.planned_through.is_(None),
                                Enrolment.planned_through < horizon),
                            or_(Enrolment.ends_at.is_(None), Enrolment.ends_at > now))
                     .order_by(Enrolment.id))
            if client_ids is not None:
                query = query.where(Couple.id.in_(select(CouplePartner.couple_id).where(
                    CouplePartner.client_id.in_(client_ids))))
            for enrolment, couple in (await session.execute(query)).all():
                partners = [await session.get(Client, p.client_id) for p in couple.partners]
                ready = [c for c in partners if c is not None and c.status is ClientStatus.ACTIVE
                         and c.timezone is not None]
                if len(ready) != 2:
                    continue  # both partners reachable and set up, or nothing is paired
                created += await self._plan_couple_enrolment(session, enrolment, couple, ready,
                                                             now, horizon)
        return created

    async def _plan_couple_enrolment(self, session: AsyncSession, enrolment: Enrolment,
                                     couple: Couple, partners: list[Client], now: datetime,
                                     horizon: datetime) -> int:
        program = self.library.programs.get(enrolment.program_key)
        if program is None:
            log.warning("couple enrolment %d names program %r, which the library no longer has",
                        enrolment.id, enrolment.program_key)
            return 0
        start = max(enrolment.planned_through or enrolment.starts_at, enrolment.starts_at,
                    now - self.settings.grace)
        until = min(horizon, enrolment.ends_at) if enrolment.ends_at else horizon
        created = 0
        for index, step in enumerate(program.steps):
            # Each partner's occurrences in their own zone, matched by their local day.
            by_day: dict[date | str, dict[int, Occurrence]] = {}
            for client in partners:
                assert client.timezone is not None
                for occurrence in occurrences(
                        step, ZoneInfo(client.timezone), after=start - ZONE_MARGIN,
                        until=until + ZONE_MARGIN, anchor=enrolment.anchor_at,
                        start=first_start(enrolment), seed=f"couple{enrolment.id}:{index}"):
                    day: date | str = "anchor" if step.once else occurrence.local_date
                    by_day.setdefault(day, {})[client.id] = occurrence
            for day, found in sorted(by_day.items(), key=lambda item: str(item[0])):
                if len(found) == 2:
                    created += await self._plan_pair(session, enrolment, couple, program, index,
                                                     day, found, start, until, now)
        enrolment.planned_through = max(until, enrolment.planned_through or until)
        await session.flush()
        return created

    async def _plan_pair(self, session: AsyncSession, enrolment: Enrolment, couple: Couple,
                         program: Program, index: int, day: date | str,
                         found: dict[int, Occurrence], start: datetime, until: datetime,
                         now: datetime) -> int:
        """One pair group for a step's local day, and each partner's delivery in it."""
        step = program.steps[index]
        key = f"ce{enrolment.id}:s{index}:{day}"
        group = await session.scalar(select(PairGroup).where(PairGroup.dedupe_key == key))
        if group is None:
            if not start < min(o.at for o in found.values()) <= until:
                return 0
            number = int(await session.scalar(select(func.count()).select_from(PairGroup).where(
                PairGroup.dedupe_key.startswith(f"ce{enrolment.id}:s{index}:"))) or 0)
            group = PairGroup(couple_id=couple.id, kind=PairKind.PROMPT, state=PairState.OPEN,
                              dedupe_key=key, expires_at=now, created_at=now)
            session.add(group)
            await session.flush()
        elif group.state is not PairState.OPEN:
            return 0
        else:
            number = int(await session.scalar(select(func.count()).select_from(PairGroup).where(
                PairGroup.dedupe_key.startswith(f"ce{enrolment.id}:s{index}:"),
                PairGroup.id < group.id)) or 0)
        created = 0
        positions = {p.client_id: p.position for p in couple.partners}
        for client_id, occurrence in found.items():
            delivery_key = f"{key}:c{client_id}"
            if await session.scalar(select(Delivery.id).where(Delivery.dedupe_key == delivery_key)):
                continue
            if occurrence.at <= now - self.settings.grace:
                continue  # replanned too late for this partner: it would only be missed
            if step.complementary is not None:
                # Who gets which side alternates, so neither partner always answers the same one.
                prompt_key = step.complementary[(positions[client_id] + number) % 2]
            else:
                prompt_key = self.choose(step, enrolment.id, number)
            prompt = self.library.prompts.get(prompt_key)
            client = await session.get(Client, client_id)
            if prompt is None or client is None:
                continue
            delivery = new_delivery(client, prompt, scheduled_for=occurrence.at,
                                    settings=self.settings, enrolment_id=enrolment.id,
                                    dedupe_key=delivery_key)
            delivery.pair_group_id = group.id
            delivery.prompt = {**delivery.prompt, "pair": PairKind.PROMPT.value}
            session.add(delivery)
            created += 1
        await session.flush()
        # One expiry for the pair: the later of the two partners' own.
        members = list(await session.scalars(select(Delivery).where(
            Delivery.pair_group_id == group.id)))
        if members:
            group.expires_at = max(d.expires_at for d in members)
            for delivery in members:
                delivery.expires_at = group.expires_at
        return created

    def _occurrences(self, enrolment: PlannedEnrolment, client: PlannedClient, now: datetime,
                     horizon: datetime) -> list[_Due]:
        found = program_of(enrolment, self.library)
        if found is None:
            log.warning("enrolment %d names program %r, which the library no longer has",
                        enrolment.id, enrolment.program_key)
            return []
        program, prompts = found
        assert client.timezone is not None
        zone = ZoneInfo(client.timezone)
        if enrolment.planned_through is None and enrolment.pool_draws is None:
            enrolment.pool_draws = {}  # never planned: nothing drawn yet, no need to count
        # Never plan what is already later than the catch-up grace: it would only be missed.
        start = max(enrolment.planned_through or enrolment.starts_at, enrolment.starts_at,
                    now - self.settings.grace)
        until = min(horizon, enrolment.ends_at) if enrolment.ends_at else horizon
        due = [
            _Due(enrolment, client, prompts, index, step, occurrence,
                 self._dedupe_key(enrolment.id, index, step, occurrence))
            for index, step in enumerate(program.steps)
            for occurrence in self._step_times(program.key, index, step, zone, start, until,
                                               enrolment)
        ]
        enrolment.planned_through = max(until, enrolment.planned_through or until)
        return due

    def _step_times(self, program: str, index: int, step: Step, zone: ZoneInfo, start: datetime,
                    until: datetime, enrolment: PlannedEnrolment) -> list[Occurrence]:
        """A step's times in a span. A daily or weekly step's are the same for every client in
        one zone planned over one span (most are, planned together up to one horizon), so they
        are worked out once per run; anchored, start and window steps differ per enrolment."""
        # A custom step is its enrolment's own, whatever its program key says.
        if step.once or step.window is not None or enrolment.custom:
            return list(occurrences(step, zone, after=start, until=until,
                                    anchor=enrolment.anchor_at, start=first_start(enrolment),
                                    seed=f"{enrolment.id}:{index}"))
        key = (program, index, zone.key, start, until)
        times = self._times.get(key)
        if times is None:
            times = self._times[key] = list(occurrences(step, zone, after=start, until=until))
        return times

    async def _load_draws(self, enrolments: list[PlannedEnrolment],
                          session: AsyncSession) -> None:
        """Fill in `pool_draws` for enrolments planned before it was kept (one query for all)."""
        missing = {enrolment.id: enrolment for enrolment in enrolments
                   if enrolment.pool_draws is None}
        if not missing:
            return
        counts: dict[int, Counter[str]] = {enrolment_id: Counter() for enrolment_id in missing}
        ids = list(missing)
        for start in range(0, len(ids), KEYS_PER_QUERY):
            for enrolment_id, key in (await session.execute(
                    select(Delivery.enrolment_id, Delivery.dedupe_key).where(
                        Delivery.enrolment_id.in_(ids[start:start + KEYS_PER_QUERY]),
                        Delivery.dedupe_key.is_not(None)))).all():
                counts[enrolment_id][key.split(":")[1].removeprefix("s")] += 1
        for enrolment_id, enrolment in missing.items():
            enrolment.pool_draws = dict(counts[enrolment_id])

    def _draw(self, item: _Due) -> str:
        """A pool is drawn in a per-client order, without repeats until it is used up."""
        step = item.step
        if step.prompt:
            return step.prompt
        draws = dict(item.enrolment.pool_draws or {})
        number = draws.get(str(item.index), 0)
        draws[str(item.index)] = number + 1
        item.enrolment.pool_draws = draws
        return self.choose(step, item.enrolment.id, number)

    @staticmethod
    def choose(step: Step, enrolment_id: int, number: int) -> str:
        """The `number`th draw of a step: a pool in a per-client order, without repeats until it
        is used up."""
        if step.prompt:
            return step.prompt
        offset = int(hashlib.sha256(str(enrolment_id).encode()).hexdigest()[:8], 16)
        return step.pool[(offset + number) % len(step.pool)]

    @staticmethod
    def _dedupe_key(enrolment_id: int, index: int, step: Step, occurrence: Occurrence) -> str:
        when = ("start" if step.start_hours is not None else "anchor") if step.once \
            else occurrence.local_date.isoformat()
        return f"e{enrolment_id}:s{index}:{when}"
