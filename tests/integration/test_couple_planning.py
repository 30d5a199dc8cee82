"""Planning a couple's program: one pair per moment, each partner at their own local time."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.models import Client, Delivery, PairGroup
from bot.library import Library
from bot.scheduling.planner import Planner
from bot.services import controls, couples, onboarding
from tests.conftest import make_settings


async def _couple(db: Database, clock: FakeClock, settings: Settings, library: Library,
                  zones: tuple[str, str], program: str, anchor: datetime | None = None) -> tuple[int, int]:
    """Two consenting clients of one therapist, linked, both agreed, in a couple program."""
    async with db.transaction() as session:
        therapist = await onboarding.add_therapist(session, "Dr Rivera", clock, settings)
        ids = []
        for number, zone in enumerate(zones):
            invite = await onboarding.invite_client(
                session, therapist_id=therapist.id, name=f"Partner {number}", clock=clock,
                settings=settings, library=library, timezone=zone)
            await onboarding.give_consent(session, invite.token, 7000 + number, "en", clock,
                                          settings, library)
            client = await session.get(Client, invite.id)
            assert client is not None
            await controls.set_timezone(session, client, zone, clock)
            ids.append(client.id)
        couple = await couples.link(session, first=ids[0], second=ids[1], clock=clock,
                                    library=library, program=program, anchor=anchor)
        for client_id in ids:
            client = await session.get(Client, client_id)
            assert client is not None
            await couples.answer_pairing(session, client, couple.id, "s", clock, library)
    return ids[0], ids[1]


async def _paired(db: Database) -> dict[int, list[Delivery]]:
    async with db.transaction() as session:
        groups: dict[int, list[Delivery]] = defaultdict(list)
        for delivery in await session.scalars(select(Delivery).where(
                Delivery.pair_group_id.is_not(None)).order_by(Delivery.id)):
            assert delivery.pair_group_id is not None
            groups[delivery.pair_group_id].append(delivery)
        return groups


async def test_complementary_prompts_go_one_to_each_and_swap_each_week(
    db: Database, library: Library, tmp_path: Path
) -> None:
    """Each Thursday one partner gets one side and the other the other, swapping the next week."""
    settings = make_settings(tmp_path, planning_horizon_hours=24 * 15)
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # a Monday
    first, second = await _couple(db, clock, settings, library, ("Europe/Berlin", "Europe/Lisbon"),
                                  "couple-weekly-appreciation")
    await Planner(db, library, clock, settings).plan()
    groups = await _paired(db)
    thursdays = [g for g in groups.values() if g[0].prompt_key in ("couple.i-reached", "couple.they-reached")]
    sundays = [g for g in groups.values() if g not in thursdays]
    assert len(thursdays) == 2
    assert len(sundays) == 2
    week_one, week_two = ({d.client_id: d.prompt_key for d in group} for group in thursdays)
    assert week_one == {first: "couple.i-reached", second: "couple.they-reached"}
    assert week_two == {first: "couple.they-reached", second: "couple.i-reached"}
    for group in sundays:  # the same prompt to both, drawn without repeats week to week
        assert len({d.prompt_key for d in group}) == 1
    assert sundays[0][0].prompt_key != sundays[1][0].prompt_key
    # Planning again creates nothing twice.
    assert await Planner(db, library, clock, settings).plan() == 0


async def test_a_couples_session_program_follows_each_partners_own_clock(
    db: Database, library: Library, tmp_path: Path
) -> None:
    """Before and after a shared session, each partner gets each step at its local time; one expiry."""
    settings = make_settings(tmp_path, planning_horizon_hours=24 * 14)
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    berlin, los_angeles = ZoneInfo("Europe/Berlin"), ZoneInfo("America/Los_Angeles")
    session_at = datetime(2026, 3, 6, 11, 0, tzinfo=berlin)  # a video session at 02:00 in LA
    first, second = await _couple(db, clock, settings, library,
                                  ("Europe/Berlin", "America/Los_Angeles"),
                                  "couple-kap-integration", anchor=session_at)
    await Planner(db, library, clock, settings).plan()
    groups = await _paired(db)
    program = library.programs["couple-kap-integration"]
    assert len(groups) == len(program.steps)
    zones = {first: berlin, second: los_angeles}
    for group in groups.values():
        assert {d.client_id for d in group} == {first, second}
        local = {d.client_id: d.scheduled_for.astimezone(zones[d.client_id]) for d in group}
        assert local[first].strftime("%H:%M") == local[second].strftime("%H:%M")
        assert len({d.expires_at for d in group}) == 1
        assert group[0].expires_at == max(d.due_at for d in group) + settings.expiry
    landing = next(g for g in groups.values() if g[0].prompt_key == "couple.kap-landing")
    # The session's own day is the anchor's day in each partner's zone: 6 March in both.
    assert {d.scheduled_for.astimezone(zones[d.client_id]).date().day for d in landing} == {6}
    async with db.transaction() as session:
        states = {g.state.value for g in await session.scalars(select(PairGroup))}
    assert states == {"open"}


async def test_a_partner_changing_zone_is_replanned_within_the_same_pair(
    db: Database, library: Library, tmp_path: Path
) -> None:
    """When one partner moves zone, their side of each pair is planned again; the pair stays one."""
    settings = make_settings(tmp_path, planning_horizon_hours=24 * 8)
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    _, second = await _couple(db, clock, settings, library, ("Europe/Berlin", "Europe/Berlin"),
                                  "couple-weekly-appreciation")
    planner = Planner(db, library, clock, settings)
    await planner.plan()
    before = await _paired(db)
    async with db.transaction() as session:
        client = await session.get(Client, second)
        assert client is not None
        await controls.set_timezone(session, client, "America/New_York", clock)
    await planner.plan()
    after = await _paired(db)
    assert set(after) == set(before)
    new_york = ZoneInfo("America/New_York")
    for group in after.values():
        assert len(group) == 2
        moved = next(d for d in group if d.client_id == second)
        assert moved.scheduled_for.astimezone(new_york).strftime("%H:%M") in ("19:00", "19:30")
        assert len({d.expires_at for d in group}) == 1
