"""Planner: turns enrolments into deliveries (the outbox) for the hours ahead.

It walks each active enrolment from where it last stopped (`planned_through`) to the planning
horizon, in the client's time zone, and writes one delivery per step occurrence. A dedupe key
per enrolment, step and local day makes planning idempotent: a restart or a second process that
plans the same span creates nothing twice.

A couple's enrolment becomes one pair group per step and local day, with one delivery per
partner at the step's wall time in that partner's own zone (quiet hours per partner), and one
expiry for both: the later of the two. See the README's Couples section.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.models import (
    Client,
    ClientStatus,
    Couple,
    CouplePartner,
    Delivery,
    Enrolment,
    PairGroup,
    PairKind,
    PairState,
)
from bot.library import Library
from bot.library.schema import Program, Prompt, Step
from bot.scheduling.timing import Occurrence, occurrences
from bot.services.controls import quiet_release

log = logging.getLogger(__name__)
CHUNK = 500  # enrolments per transaction: keeps write locks short on SQLite
# Partners' local days differ by at most 26 hours (UTC-12 to UTC+14): look this far either side.
ZONE_MARGIN = timedelta(days=2)


CUSTOM_PROGRAM = "custom"


def program_of(enrolment: Enrolment, library: Library) -> tuple[Program, Mapping[str, Prompt]] | None:
    """The program an enrolment follows and the prompts it may draw from; None if the library
    no longer has it. A therapist's custom prompt carries its own one-step program."""
    if enrolment.custom:
        prompt = Prompt.model_validate(enrolment.custom["prompt"])
        step = Step.model_validate(enrolment.custom["step"])
        return Program(key=CUSTOM_PROGRAM, title=prompt.key, steps=(step,)), {prompt.key: prompt}
    program = library.programs.get(enrolment.program_key)
    return (program, library.prompts) if program else None


def prompt_snapshot(prompt: Prompt) -> dict[str, object]:
    """The prompt as stored on a delivery, so what was sent stays true after library edits."""
    return prompt.model_dump(mode="json", exclude_defaults=False)


def new_delivery(client: Client, prompt: Prompt, *, scheduled_for: datetime, settings: Settings,
                 enrolment_id: int | None = None, dedupe_key: str | None = None) -> Delivery:
    """A delivery with its due time moved out of quiet hours and its reminder and expiry set."""
    due = quiet_release(client, scheduled_for)
    expires = due + settings.expiry
    reminder = quiet_release(client, due + settings.reminder_after)
    return Delivery(
        client_id=client.id, enrolment_id=enrolment_id, dedupe_key=dedupe_key,
        prompt_key=prompt.key, prompt=prompt_snapshot(prompt), scheduled_for=scheduled_for,
        due_at=due, expires_at=expires, reminder_at=reminder if reminder < expires else None,
    )


class Planner:
    def __init__(self, db: Database, library: Library, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.library = library
        self.clock = clock
        self.settings = settings

    async def plan(self, client_ids: Sequence[int] | None = None) -> int:
        """Plan every active enrolment (or those of some clients); returns deliveries created."""
        now = self.clock.now()
        horizon = now + self.settings.horizon
        created, after_id = 0, 0
        while True:
            async with self.db.transaction() as session:
                query = (
                    select(Enrolment, Client).join(Client, Client.id == Enrolment.client_id)
                    .where(Enrolment.id > after_id, Enrolment.ended_at.is_(None),
                           Client.status == ClientStatus.ACTIVE, Client.timezone.is_not(None),
                           or_(Enrolment.planned_through.is_(None),
                               Enrolment.planned_through < horizon),
                           or_(Enrolment.ends_at.is_(None), Enrolment.ends_at > now))
                    .order_by(Enrolment.id).limit(CHUNK))
                if client_ids is not None:
                    query = query.where(Enrolment.client_id.in_(client_ids))
                rows = (await session.execute(query)).all()
                for enrolment, client in rows:
                    created += await self._plan_enrolment(session, enrolment, client, now,
                                                          horizon)
            if len(rows) < CHUNK:
                break
            after_id = rows[-1][0].id
        created += await self._plan_couples(client_ids, now, horizon)
        if created:
            log.info("planned %d deliveries", created)
        return created

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
                        seed=f"couple{enrolment.id}:{index}"):
                    day: date | str = "anchor" if step.anchored else occurrence.local_date
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

    async def _plan_enrolment(self, session: AsyncSession, enrolment: Enrolment, client: Client,
                              now: datetime, horizon: datetime) -> int:
        found = program_of(enrolment, self.library)
        if found is None:
            log.warning("enrolment %d names program %r, which the library no longer has",
                        enrolment.id, enrolment.program_key)
            return 0
        program, prompts = found
        assert client.timezone is not None
        zone = ZoneInfo(client.timezone)
        # Never plan what is already later than the catch-up grace: it would only be missed.
        start = max(enrolment.planned_through or enrolment.starts_at, enrolment.starts_at,
                    now - self.settings.grace)
        until = min(horizon, enrolment.ends_at) if enrolment.ends_at else horizon

        created = 0
        for index, step in enumerate(program.steps):
            sent_before = await self._step_count(session, enrolment.id, index)
            for number, occurrence in enumerate(occurrences(
                    step, zone, after=start, until=until, anchor=enrolment.anchor_at,
                    seed=f"{enrolment.id}:{index}")):
                prompt = prompts.get(self.choose(step, enrolment.id, sent_before + number))
                if prompt is None:
                    continue
                key = self._dedupe_key(enrolment.id, index, step, occurrence)
                if await session.scalar(select(Delivery.id).where(Delivery.dedupe_key == key)):
                    continue
                session.add(new_delivery(client, prompt, scheduled_for=occurrence.at,
                                         settings=self.settings, enrolment_id=enrolment.id,
                                         dedupe_key=key))
                created += 1
        enrolment.planned_through = max(until, enrolment.planned_through or until)
        await session.flush()
        return created

    @staticmethod
    async def _step_count(session: AsyncSession, enrolment_id: int, index: int) -> int:
        prefix = f"e{enrolment_id}:s{index}:"
        count = await session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.enrolment_id == enrolment_id, Delivery.dedupe_key.startswith(prefix)))
        return int(count or 0)

    @staticmethod
    def choose(step: Step, enrolment_id: int, number: int) -> str:
        """A pool is drawn in a per-client order, without repeats until it is used up."""
        if step.prompt:
            return step.prompt
        offset = int(hashlib.sha256(str(enrolment_id).encode()).hexdigest()[:8], 16)
        return step.pool[(offset + number) % len(step.pool)]

    @staticmethod
    def _dedupe_key(enrolment_id: int, index: int, step: Step, occurrence: Occurrence) -> str:
        when = "anchor" if step.anchored else occurrence.local_date.isoformat()
        return f"e{enrolment_id}:s{index}:{when}"
