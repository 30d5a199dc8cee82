"""A therapist's couples, for the dashboard and the JSON API (review path).

Reads go through `couple_for`, which treats another therapist's couple as missing, as
`practice.client_for` does for a client, and writes one audit entry per partner, so each
partner's access log shows that their answers were read beside the other's. The shapes here
are built from `couples.side_by_side`, so the command line and the dashboard read the same data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import Client, ClientStatus, Couple, CouplePartner, Enrolment
from bot.library import Library
from bot.library.schema import Audience, ResponseType
from bot.services import audit, couples, schedules
from bot.services.audit import Actor
from bot.services.practice import NotFound


async def couple_for(session: AsyncSession, actor: Actor, couple_id: int, action: str,
                     clock: Clock, *, detail: str | None = None) -> Couple:
    """The couple, if the actor may see it (their own, or any for the admin); audited for both."""
    couple = await session.get(Couple, couple_id)
    if couple is None or (actor.therapist_id is not None
                          and couple.therapist_id != actor.therapist_id):
        raise NotFound(f"there is no couple {couple_id}")
    note = f"couple {couple.id}" + (f", {detail}" if detail else "")
    for partner in couple.partners:
        await audit.record(session, actor, action, clock, client_id=partner.client_id, detail=note)
    return couple


@dataclass(frozen=True)
class CoupleLink:
    """A couple seen from one partner's page: who the other is, and where the couple stands."""

    couple_id: int
    partner_id: int
    partner_name: str
    state: str


async def couples_of(session: AsyncSession, client_id: int) -> list[CoupleLink]:
    """Every couple this client is or was in, newest first (for links from their page)."""
    found = []
    couple_ids = list(await session.scalars(select(CouplePartner.couple_id).where(
        CouplePartner.client_id == client_id).order_by(CouplePartner.couple_id.desc())))
    for couple_id in couple_ids:
        couple = await session.get(Couple, couple_id)
        assert couple is not None
        other = next((p for p in couple.partners if p.client_id != client_id), None)
        if other is None:
            continue
        partner = await session.get(Client, other.client_id)
        assert partner is not None
        found.append(CoupleLink(couple.id, partner.id, partner.display_name,
                                couples.couple_state(couple)))
    return found


async def linkable_clients(session: AsyncSession, therapist_id: int) -> list[Client]:
    """The therapist's clients who could be linked now: joined, not stopped, in no open couple."""
    coupled = set(await session.scalars(select(CouplePartner.open_client_id).where(
        CouplePartner.open_client_id.is_not(None))))
    clients = await session.scalars(select(Client).where(
        Client.therapist_id == therapist_id, Client.status == ClientStatus.ACTIVE)
        .order_by(Client.id))
    rows = [c for c in clients if c.id not in coupled]
    return sorted(rows, key=lambda c: c.display_name.casefold())  # names are sealed: sorted here


def couple_programs(library: Library) -> list[Any]:
    return [p for p in library.programs.values() if p.audience is Audience.COUPLE]


def pairable_prompts(library: Library) -> list[tuple[str, list[str]]]:
    """Library prompts a couple can be sent together (not check-ins), couple prompts first."""
    keys = sorted((k for k, p in library.prompts.items()
                   if p.response is not ResponseType.CHECKIN),
                  key=lambda k: (not k.startswith(("couple.", "repair.")), k))
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split(".", 1)[0], []).append(key)
    return list(groups.items())


def program_titles(keys: list[str], library: Library) -> list[str]:
    return [library.programs[k].title if k in library.programs else k for k in keys]


async def medicine_sessions(session: AsyncSession, couple: Couple) -> list[datetime]:
    """Both partners' medicine sessions and the anchors of the couple's own programs."""
    moments: set[datetime] = set()
    for partner in couple.partners:
        moments.update(await schedules.medicine_sessions(session, partner.client_id))
    moments.update(a for a in await session.scalars(select(Enrolment.anchor_at).where(
        Enrolment.couple_id == couple.id, Enrolment.anchor_at.is_not(None))) if a is not None)
    return sorted(moments)


# One couple's page ----------------------------------------------------------------------------

SHARE_LABELS = {True: "shared", False: "kept private", None: "not chosen"}


@dataclass(frozen=True)
class Side:
    """One partner's side of a paired prompt: what they were asked, said and chose."""

    client_id: int
    name: str
    position: int
    prompt_key: str | None
    prompt_text: str | None
    status: str
    sent_at: datetime | None
    answered_at: datetime | None
    share: str  # shared, kept private, not chosen
    share_chosen: bool  # pressed a button (else their usual choice applied, or none yet)
    revealed_at: datetime | None  # when their answer was passed on to the partner
    answers: list[dict[str, Any]]

    @property
    def edited_after_reveal(self) -> bool:
        return any(a["edited_after_reveal"] for a in self.answers)


@dataclass(frozen=True)
class PairRow:
    id: int
    kind: str
    state: str
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    started_by: str | None
    talk_at: datetime | None
    talk_accepted_at: datetime | None
    sides: list[Side] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """Partners with no side yet (an exercise not joined) or no answer."""
        return [s.name for s in self.sides if s.answered_at is None]


@dataclass(frozen=True)
class Partner:
    client_id: int
    name: str
    position: int
    timezone: str | None
    agreed_at: datetime | None
    shares_by_default: bool | None


@dataclass(frozen=True)
class CoupleView:
    id: int
    state: str
    created_at: datetime
    active_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    partners: list[Partner]
    programs: list[str]
    pairs: list[PairRow]  # newest first
    checkins: dict[int, list[dict[str, Any]]]
    raw: dict[str, Any]  # side_by_side as it came, for the JSON API

    def partner(self, client_id: int) -> Partner | None:
        return next((p for p in self.partners if p.client_id == client_id), None)


async def view(session: AsyncSession, couple: Couple, library: Library, *,
               since: datetime | None = None) -> CoupleView:
    """The couple side by side; pair groups newest first (from `since`, when given)."""
    raw = await couples.side_by_side(session, couple.id)
    positions = {p.client_id: p.position for p in couple.partners}
    partners = [Partner(p["client_id"], p["name"], positions.get(p["client_id"], 0),
                        p["timezone"], p["agreed_at"], p["shares_by_default"])
                for p in raw["partners"]]
    partners.sort(key=lambda p: p.position)
    names = {p.client_id: p.name for p in partners}
    pairs = []
    for group in reversed(raw["pair_groups"]):
        if since is not None and group["created_at"] < since:
            continue
        sides = [Side(s["client_id"], names.get(s["client_id"], "?"),
                      positions.get(s["client_id"], 0), s["prompt_key"], s["prompt_text"],
                      s["status"], s["sent_at"], s["answered_at"], SHARE_LABELS[s["shared"]],
                      s["share_chosen"], s["revealed_at"], s["answers"])
                 for s in group["partners"]]
        present = {s.client_id for s in sides}
        # An exercise the other partner never joined has one side: show the empty one too.
        sides += [Side(p.client_id, p.name, p.position, None, None, "not joined", None, None,
                       SHARE_LABELS[None], False, None, []) for p in partners
                  if p.client_id not in present]
        sides.sort(key=lambda s: s.position)
        pairs.append(PairRow(group["pair_group_id"], group["kind"], group["state"],
                             group["created_at"], group["expires_at"], group["closed_at"],
                             names.get(group["started_by_client_id"]), group["talk_at"],
                             group["talk_accepted_at"], sides))
    return CoupleView(raw["id"], raw["state"], raw["created_at"], raw["active_at"],
                      raw["ended_at"], raw["end_reason"], partners,
                      program_titles(raw["programs"], library), pairs, raw["checkins"], raw)
