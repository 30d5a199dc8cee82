"""The `interlude` command: run the bot or the demo, migrate, and manage people and prompts.

Every command that prints data takes --json and then prints exactly one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import SystemClock
from bot.config import OFFICIAL_API_URL, Settings
from bot.db.encryption import EncryptionKeyError
from bot.db.engine import Database, open_database
from bot.db.migrate import upgrade
from bot.library import Library, LibraryError, load_library
from bot.logs import configure_logging
from bot.services import alerts, onboarding, review
from bot.services.onboarding import OnboardingError

DEMO_USERNAME = "InterludeDemoBot"


class CommandError(Exception):
    """Shown to the admin as one plain line, without a traceback."""


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str) if args.json else text)


async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[Any]]) -> Any:
    db = open_database(settings)
    try:
        await upgrade(db.engine)
        return await work(db)
    finally:
        await db.dispose()


def _library(settings: Settings) -> Library:
    try:
        return load_library(settings.prompts_dir)
    except LibraryError as error:
        raise CommandError("the prompt library has problems:\n  " + "\n  ".join(error.problems)) \
            from None


async def _username(settings: Settings, db: Database) -> str:
    if settings.bot_username:
        return settings.bot_username.lstrip("@")
    async with db.transaction() as session:
        cached = await review.bot_username(session)
    if cached:
        return cached
    if settings.telegram_token is None:
        return DEMO_USERNAME
    url = f"{settings.telegram_api_url.rstrip('/')}/bot{settings.telegram_token.get_secret_value()}/getMe"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            username = (await client.get(url)).json()["result"]["username"]
    except (httpx.HTTPError, KeyError, ValueError):
        raise CommandError("could not ask Telegram for the bot's username; set "
                           "INTERLUDE_BOT_USERNAME in .env") from None
    async with db.transaction() as session:
        await review.remember_bot_username(session, username)
    return str(username)


# Commands ------------------------------------------------------------------------------------

def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> None:
        return None

    asyncio.run(_with_db(settings, work))
    _print(args, {"database": "up to date"}, "Database is up to date.")


def cmd_therapist_add(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> tuple[int, str]:
        async with db.transaction() as session:
            issued = await onboarding.add_therapist(session, args.name, SystemClock(), settings)
        return issued.id, review.deep_link(await _username(settings, db), issued.token)

    therapist_id, link = asyncio.run(_with_db(settings, work))
    _print(args, {"id": therapist_id, "link": link},
           f"Therapist {therapist_id} added.\nOpen this link in your own Telegram to receive "
           f"alerts there (valid {settings.therapist_link_ttl_hours:g} hours, once):\n{link}")


def cmd_therapist_link(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> str:
        async with db.transaction() as session:
            token = await onboarding.new_therapist_link(session, args.id, SystemClock(), settings)
        return review.deep_link(await _username(settings, db), token)

    link = asyncio.run(_with_db(settings, work))
    _print(args, {"id": args.id, "link": link}, link)


def cmd_therapist_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.transaction() as session:
            return [{"id": t.id, "name": t.display_name,
                     "telegram_linked": t.telegram_user_id is not None}
                    for t in await review.therapists(session)]

    rows = asyncio.run(_with_db(settings, work))
    _print(args, rows, "\n".join(f"{r['id']:>4}  {r['name']}" + ("" if r["telegram_linked"]
                                 else "  (Telegram not linked yet)") for r in rows) or "No therapists yet.")


def cmd_client_invite(args: argparse.Namespace, settings: Settings) -> None:
    library = _library(settings)
    anchor = None
    if args.anchor:
        try:
            anchor = datetime.fromisoformat(args.anchor)
        except ValueError:
            raise CommandError(f"--anchor {args.anchor!r} is not an ISO date and time, "
                               "like 2026-12-01T10:00+01:00") from None
        if anchor.tzinfo is None and args.tz:
            from zoneinfo import ZoneInfo
            anchor = anchor.replace(tzinfo=ZoneInfo(args.tz))

    async def work(db: Database) -> tuple[int, str, str]:
        async with db.transaction() as session:
            issued = await onboarding.invite_client(
                session, therapist_id=args.therapist, name=args.name, clock=SystemClock(),
                settings=settings, library=library, program=args.program, anchor=anchor,
                timezone=args.tz)
        return issued.id, issued.token, review.deep_link(await _username(settings, db), issued.token)

    client_id, token, link = asyncio.run(_with_db(settings, work))
    _print(args, {"client_id": client_id, "token": token, "link": link},
           f"Client {client_id} invited. Give them this link (single use, valid "
           f"{settings.invite_ttl_hours:g} hours):\n{link}\n\nToken: {token}")


def cmd_client_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.transaction() as session:
            return [{"id": c.id, "therapist_id": c.therapist_id, "name": c.display_name,
                     "status": c.status.value, "timezone": c.timezone,
                     "paused_until": c.paused_until}
                    for c in await review.clients(session, args.therapist)]

    rows = asyncio.run(_with_db(settings, work))
    _print(args, rows, "\n".join(f"{r['id']:>4}  {r['name']:<24} {r['status']:<12} "
                                 f"{r['timezone'] or ''}" for r in rows) or "No clients yet.")


def cmd_client_thresholds(args: argparse.Namespace, settings: Settings) -> None:
    from bot.db.models import Client

    async def work(db: Database) -> dict[str, Any]:
        async with db.transaction() as session:
            client = await session.get(Client, args.client)
            if client is None:
                raise CommandError(f"there is no client {args.client}")
            def chosen(given: int | None, kept: int | None) -> int | None:
                return kept if given is None else given or None  # 0: the practice's own

            alerts.set_thresholds(client, chosen(args.intensity, client.alert_intensity),
                                  chosen(args.shutdown_days, client.alert_shutdown_days))
            intensity, shutdown_days = alerts.thresholds(client, settings)
            return {"client_id": client.id, "intensity": intensity, "shutdown_days": shutdown_days}

    result = asyncio.run(_with_db(settings, work))
    _print(args, result, f"Client {result['client_id']}: a grounding exercise and an alert after "
           f"two check-ins at {result['intensity']} or more, or {result['shutdown_days']} days shut down.")


def cmd_prompt_send(args: argparse.Namespace, settings: Settings) -> None:
    library = _library(settings)

    async def work(db: Database) -> dict[str, Any]:
        async with db.transaction() as session:
            delivery = await review.send_now(session, client_id=args.client, prompt_key=args.prompt,
                                             library=library, clock=SystemClock(), settings=settings)
        return {"delivery_id": delivery.id, "due_at": delivery.due_at}

    result = asyncio.run(_with_db(settings, work))
    _print(args, result, f"Queued as delivery {result['delivery_id']}. The running bot sends it "
           f"at {result['due_at']:%Y-%m-%d %H:%M} UTC (now, unless it is the client's quiet hours).")


def cmd_replies(args: argparse.Namespace, settings: Settings) -> None:
    from bot.services import audit

    async def work(db: Database) -> list[review.AnswerRecord]:
        async with db.transaction() as session:
            records = await review.answers(session, args.client)
            await audit.record(session, audit.ADMIN, "viewed_replies", SystemClock(),
                               client_id=args.client)
            return records

    records = asyncio.run(_with_db(settings, work))
    lines = []
    for record in records:
        head = (f"[{record.sent_at:%Y-%m-%d %H:%M}] {record.prompt_key}: {record.prompt_text}"
                if record.sent_at else "[without a prompt]")
        lines.append(head)
        if record.checkin:
            lines.append(f"    check-in: {record.checkin['state']}, {record.checkin['intensity']}/10")
        for reply in record.replies:
            shown = reply["text"] or reply["value"] or f"voice note, {reply['voice_seconds']} s"
            lines.append(f"    {reply['kind']}: {shown}" + (" (edited)" if reply["edited_at"] else ""))
    _print(args, [r.as_json() for r in records], "\n".join(lines) or "No answers yet.")


def _anchor(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--anchor {value!r} is not an ISO date and time, "
                           "like 2026-12-01T10:00+01:00") from None


@contextlib.asynccontextmanager
async def _couple_transaction(db: Database) -> AsyncIterator[AsyncSession]:
    """A transaction for a couple command; what the couples service refuses is one plain line."""
    from bot.services import couples

    try:
        async with db.transaction() as session:
            yield session
    except couples.CoupleError as error:
        raise CommandError(str(error)) from None


def cmd_couple_link(args: argparse.Namespace, settings: Settings) -> None:
    from bot.services import couples

    library = _library(settings)
    anchor = _anchor(args.anchor)

    async def work(db: Database) -> dict[str, Any]:
        async with _couple_transaction(db) as session:
            couple = await couples.link(session, first=args.first, second=args.second,
                                        clock=SystemClock(), library=library,
                                        program=args.program, anchor=anchor)
            return {"couple_id": couple.id, "clients": [args.first, args.second],
                    "state": couples.couple_state(couple), "program": args.program}

    result = asyncio.run(_with_db(settings, work))
    _print(args, result, f"Couple {result['couple_id']} linked. Each partner is asked in their "
           "own chat whether they'd like paired prompts; they start once both agree.")


def cmd_couple_enrol(args: argparse.Namespace, settings: Settings) -> None:
    from bot.services import couples

    library = _library(settings)
    anchor = _anchor(args.anchor)

    async def work(db: Database) -> dict[str, Any]:
        async with _couple_transaction(db) as session:
            enrolment = await couples.enrol(session, args.couple, args.program, library,
                                            SystemClock(), anchor=anchor)
            return {"couple_id": args.couple, "enrolment_id": enrolment.id,
                    "program": args.program}

    result = asyncio.run(_with_db(settings, work))
    _print(args, result, f"Couple {args.couple} enrolled in {args.program}.")


def cmd_couple_send(args: argparse.Namespace, settings: Settings) -> None:
    from bot.services import couples

    library = _library(settings)

    async def work(db: Database) -> dict[str, Any]:
        async with _couple_transaction(db) as session:
            group = await couples.send_now(session, args.couple, args.prompt, library,
                                           SystemClock(), settings)
            return {"couple_id": args.couple, "pair_group_id": group.id,
                    "expires_at": group.expires_at}

    result = asyncio.run(_with_db(settings, work))
    _print(args, result, f"Queued as pair group {result['pair_group_id']} for both partners "
           "(each one's quiet hours apply).")


def cmd_couple_list(args: argparse.Namespace, settings: Settings) -> None:
    from bot.services import couples

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.transaction() as session:
            return await couples.couples(session, args.therapist)

    rows = asyncio.run(_with_db(settings, work))
    _print(args, rows, "\n".join(
        f"{r['id']:>4}  " + " & ".join(f"{p['name']} ({p['client_id']})" for p in r["partners"])
        + f"  {r['state']}" + (f" ({r['end_reason']})" if r["end_reason"] else "")
        + (f"  programs: {', '.join(r['programs'])}" if r["programs"] else "")
        for r in rows) or "No couples yet.")


def cmd_couple_show(args: argparse.Namespace, settings: Settings) -> None:
    from bot.services import couples

    async def work(db: Database) -> dict[str, Any]:
        async with _couple_transaction(db) as session:
            return await couples.side_by_side(session, args.couple)

    view = asyncio.run(_with_db(settings, work))
    names = {p["client_id"]: p["name"] for p in view["partners"]}
    lines = [f"Couple {view['id']}: " + " & ".join(names.values()) + f", {view['state']}"]
    for group in view["pair_groups"]:
        lines.append(f"\n[{group['created_at']:%Y-%m-%d %H:%M}] {group['kind']}, {group['state']}")
        for side in group["partners"]:
            shared = {True: "shared", False: "kept private", None: "not chosen"}[side["shared"]]
            lines.append(f"  {names.get(side['client_id'], side['client_id'])} "
                         f"({side['prompt_key']}, {shared}):")
            for answer in side["answers"]:
                shown = answer["text"] or answer["value"] or "voice note"
                lines.append(f"    {shown}" + (" (edited after it was shared)"
                                               if answer["edited_after_reveal"] else ""))
    _print(args, view, "\n".join(lines))


def _measures(settings: Settings, client_id: int, detail: str) -> Any:
    from bot.db.models import Client
    from bot.services import audit, questionnaires

    async def work(db: Database) -> tuple[Any, list[Any]]:
        async with db.transaction() as session:
            client = await session.get(Client, client_id)
            if client is None:
                raise CommandError(f"there is no client {client_id}")
            await audit.record(session, audit.ADMIN, "exported", SystemClock(),
                               client_id=client_id, detail=detail)
            return client, await questionnaires.results(session, client_id)

    return asyncio.run(_with_db(settings, work))


def cmd_export_fhir(args: argparse.Namespace, settings: Settings) -> None:
    """A client's questionnaires as a FHIR R4 Bundle: always one JSON document."""
    from bot.services import fhir

    client, found = _measures(settings, args.client, "fhir")
    print(json.dumps(fhir.bundle(client, found, SystemClock().now()), indent=2,
                     ensure_ascii=False))


def cmd_export_scores(args: argparse.Namespace, settings: Settings) -> None:
    """A client's questionnaire scores: CSV, or with --json the trends and each response."""
    from bot.services import questionnaires

    _client, found = _measures(settings, args.client, "questionnaires csv")
    trends = questionnaires.trends(found)
    by_key = {t.key: t for t in trends}
    data = {"questionnaires": [t.as_json() for t in trends],
            "responses": [questionnaires.result_json(r, by_key.get(r.key)) for r in found]}
    _print(args, data, questionnaires.export_csv(args.client, found).rstrip("\r\n"))


def cmd_login_link(args: argparse.Namespace, settings: Settings) -> None:
    from bot.services import signin

    async def work(db: Database) -> str:
        async with db.transaction() as session:
            return await signin.issue_link(session, args.therapist_id, SystemClock(),
                                           settings.login_link_minutes)

    url = signin.login_url(settings.web_url, asyncio.run(_with_db(settings, work)))
    _print(args, {"url": url}, f"Open this in the therapist's browser (works once, for "
           f"{settings.login_link_minutes:g} minutes):\n{url}")


def cmd_audit(args: argparse.Namespace, settings: Settings) -> None:
    from bot.services import audit

    async def work(db: Database) -> list[audit.AuditRow]:
        async with db.transaction() as session:
            return await audit.entries(session, therapist_id=args.therapist, client_id=args.client,
                                       limit=args.limit)

    rows = asyncio.run(_with_db(settings, work))
    _print(args, [r.as_json() for r in rows], "\n".join(
        f"{r.at:%Y-%m-%d %H:%M}  "
        f"{'admin' if r.therapist_id is None else f'therapist {r.therapist_id}':<13} "
        f"{r.channel:<8} {r.action:<26} "
        + (f"client {r.client_id} ({r.client})" if r.client_id else "")
        + (f"  {r.detail}" if r.detail else "")
        for r in rows) or "The audit log is empty.")


def cmd_prompts_check(args: argparse.Namespace, settings: Settings) -> None:
    try:
        library = load_library(settings.prompts_dir)
    except LibraryError as error:
        _print(args, {"ok": False, "problems": error.problems},
               "The prompt library has problems:\n  " + "\n  ".join(error.problems))
        raise SystemExit(1) from None
    _print(args, {"ok": True, "prompts": len(library.prompts), "programs": len(library.programs)},
           f"OK: {len(library.prompts)} prompts and {len(library.programs)} programs "
           f"in {settings.prompts_dir}.")


def cmd_prompts_list(args: argparse.Namespace, settings: Settings) -> None:
    library = _library(settings)
    data = {
        "prompts": [{"key": p.key, "kind": p.kind.value, "response": p.response.value,
                     "tags": list(p.tags)} for p in library.prompts.values()],
        "programs": [{"key": p.key, "title": p.title, "audience": p.audience.value,
                      "anchor": p.anchor, "steps": len(p.steps)} for p in library.programs.values()],
    }
    text = ["Programs:"] + [f"  {p['key']:<28} {p['title']}" for p in data["programs"]]
    text += ["", "Prompts:"] + [f"  {p['key']:<40} {p['kind']:<12} {p['response']}"
                                for p in data["prompts"]]
    _print(args, data, "\n".join(text))


def cmd_safety_screen(args: argparse.Namespace, settings: Settings) -> None:
    """Screen messages read one per line from stdin; print one JSON object per line."""
    from bot.safety.rules import SafetyRulesError
    from bot.safety.screening import Screener

    try:
        screener = Screener.from_file(settings.prompts_dir / "safety.yaml", settings.cache_dir)
    except SafetyRulesError as error:
        raise CommandError("the safety rules have problems:\n  " + "\n  ".join(error.problems)) from None
    for line in sys.stdin:
        text = line.rstrip("\n")
        if text:
            print(json.dumps(screener.screen(text).as_json(text), ensure_ascii=False), flush=True)


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> None:
    from bot.services import safety

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.transaction() as session:
            return await safety.alerts(session, open_only=args.open)

    rows = asyncio.run(_with_db(settings, work))
    _print(args, rows, "\n".join(
        f"{r['id']:>4}  {r['created_at']:%Y-%m-%d %H:%M}  {r['client']:<20} {r['category']:<20} "
        + ("acknowledged" if r["acknowledged_at"] else "OPEN") for r in rows) or "No alerts.")


def cmd_alerts_ack(args: argparse.Namespace, settings: Settings) -> None:
    from bot.services import safety

    async def work(db: Database) -> bool:
        async with db.transaction() as session:
            return await safety.acknowledge(session, args.id, SystemClock())

    if not asyncio.run(_with_db(settings, work)):
        raise CommandError(f"there is no open alert {args.id}")
    _print(args, {"id": args.id, "acknowledged": True}, f"Alert {args.id} acknowledged.")


def cmd_report_safety(args: argparse.Namespace, settings: Settings) -> None:
    from bot.services import safety

    try:
        start, end = (datetime.fromisoformat(value) for value in (args.start, args.end))
    except ValueError:
        raise CommandError("--from and --to take dates like 2026-11-01") from None
    start, end = (d if d.tzinfo else d.replace(tzinfo=UTC) for d in (start, end))

    async def work(db: Database) -> dict[str, Any]:
        async with db.transaction() as session:
            return await safety.report(session, start, end)

    result = asyncio.run(_with_db(settings, work))
    waits = result["minutes_to_acknowledge"]
    _print(args, result, "\n".join([
        f"Crisis referrals from {start:%Y-%m-%d} to {end:%Y-%m-%d}: {result['alerts']} "
        f"({result['open']} not yet acknowledged)",
        *(f"  {category}: {count}" for category, count in result["by_category"].items()),
        f"Minutes to acknowledgement: median {waits['median']}, longest {waits['max']}",
    ]))


def cmd_keys_generate(args: argparse.Namespace, settings: Settings) -> None:
    from bot.db.encryption import KeyRing

    key = KeyRing.generate_key()
    _print(args, {"key": key}, key)


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> None:
    from bot.db.rotation import rotate_keys

    async def work(db: Database) -> dict[str, int]:
        return await rotate_keys(db, batch=args.batch)

    rewritten = asyncio.run(_with_db(settings, work))
    total = sum(rewritten.values())
    _print(args, {"rewritten": rewritten, "total": total},
           f"Resealed {total} stored values with the current key."
           + "".join(f"\n  {name}: {count}" for name, count in rewritten.items() if count))


def cmd_keys_status(args: argparse.Namespace, settings: Settings) -> None:
    from bot.db.encryption import active_key_ring
    from bot.db.rotation import count_by_key

    counts = asyncio.run(_with_db(settings, count_by_key))
    ring = active_key_ring()
    rows = [{"key": kid, "current": kid == ring.primary_id, "in_key_ring": kid in ring.key_ids,
             "values": counts.get(kid, 0)} for kid in dict.fromkeys([*ring.key_ids, *counts])]
    _print(args, rows, "\n".join(
        f"{r['key']}  {r['values']:>8} values  "
        + ("current" if r["current"] else "older" if r["in_key_ring"] else "MISSING FROM THE KEY RING")
        for r in rows))


def cmd_emulator(args: argparse.Namespace, settings: Settings) -> None:
    from bot.emulator.runner import run_emulator

    run_emulator(args.host, args.port)


def cmd_run(args: argparse.Namespace, settings: Settings) -> None:
    from bot.runner import run_bot

    if settings.telegram_token is None and settings.telegram_api_url == OFFICIAL_API_URL:
        raise CommandError("no Telegram token: set INTERLUDE_TELEGRAM_TOKEN in .env, or point "
                           "INTERLUDE_TELEGRAM_API_URL at an emulator, or run `interlude demo`")
    asyncio.run(run_bot(settings, webhook=getattr(args, "webhook", None)))  # `start` has none


def cmd_bench_dispatch(args: argparse.Namespace, settings: Settings) -> None:
    from bot import bench

    result = asyncio.run(bench.dispatch(args.clients, args.rate, database_url=args.database_url))
    _print(args, result, bench.summary(result))


def cmd_bench_ingest(args: argparse.Namespace, settings: Settings) -> None:
    from bot import bench_ingest

    result = asyncio.run(bench_ingest.ingest(args.updates, args.clients, database_url=args.database_url))
    _print(args, result, bench_ingest.summary(result))
    if not bench_ingest.ok(result):
        raise CommandError("a reply was lost, stored twice or left unacknowledged (see above)")


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    from bot.runner import run_demo

    asyncio.run(run_demo(settings, port=args.port))


def cmd_start(args: argparse.Namespace, settings: Settings) -> None:
    """`make run`: the real bot with a token, the demo without one."""
    if settings.telegram_token is None:
        args.port = settings.demo_port
        cmd_demo(args, settings)
    else:
        cmd_run(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interlude", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(parent: Any, name: str, handler: Callable[..., None], help_text: str,
            json_flag: bool = True) -> argparse.ArgumentParser:
        command = parent.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        if json_flag:
            command.add_argument("--json", action="store_true", help="print one JSON document")
        return command

    add(commands, "start", cmd_start, "run the bot, or the demo when no token is set", False)
    run = add(commands, "run", cmd_run, "run the bot against INTERLUDE_TELEGRAM_API_URL", False)
    run.add_argument("--webhook", metavar="URL",
                     help="receive updates at this public https URL instead of polling; served "
                          "on INTERLUDE_WEBHOOK_LISTEN:INTERLUDE_WEBHOOK_PORT")
    demo = add(commands, "demo", cmd_demo, "the local demo: emulator, bot and demo data", False)
    demo.add_argument("--port", type=int, default=8081)
    emulator = add(commands, "emulator", cmd_emulator, "a local Telegram Bot API emulator", False)
    emulator.add_argument("--port", type=int, default=8081)
    emulator.add_argument("--host", default="127.0.0.1")
    add(commands, "migrate", cmd_migrate, "bring the database schema up to date")

    therapist = commands.add_parser("therapist", help="therapists").add_subparsers(
        dest="action", required=True)
    add(therapist, "add", cmd_therapist_add, "register a therapist").add_argument("name")
    add(therapist, "link", cmd_therapist_link, "a new Telegram link for a therapist").add_argument(
        "id", type=int)
    add(therapist, "list", cmd_therapist_list, "list therapists")

    client = commands.add_parser("client", help="clients").add_subparsers(dest="action", required=True)
    invite = add(client, "invite", cmd_client_invite, "create a client and an invite link")
    invite.add_argument("--therapist", type=int, required=True)
    invite.add_argument("--name", required=True, help="how the bot greets them; initials are fine")
    invite.add_argument("--program", help="a program key from prompts/programs")
    invite.add_argument("--anchor", help="the medicine session, ISO date-time with offset")
    invite.add_argument("--tz", help="the client's IANA time zone, e.g. Europe/Berlin")
    thresholds = add(client, "thresholds", cmd_client_thresholds,
                     "a client's own check-in thresholds (0 returns to the practice's)")
    thresholds.add_argument("--client", type=int, required=True)
    thresholds.add_argument("--intensity", type=int, choices=range(0, 11), metavar="0-10")
    thresholds.add_argument("--shutdown-days", type=int, choices=range(0, 15), metavar="0-14")
    client_list = add(client, "list", cmd_client_list, "list clients")
    client_list.add_argument("--therapist", type=int)

    couple = commands.add_parser("couple", help="couples and paired prompts").add_subparsers(
        dest="action", required=True)
    couple_link = add(couple, "link", cmd_couple_link,
                      "link two clients as a couple; each is asked to agree in their own chat")
    couple_link.add_argument("first", type=int, help="a client id")
    couple_link.add_argument("second", type=int, help="the other client's id")
    couple_link.add_argument("--program", help="a couple program key from prompts/programs")
    couple_link.add_argument("--anchor", help="the couple's medicine session, ISO with offset")
    couple_enrol = add(couple, "enrol", cmd_couple_enrol, "start a couple program for a couple")
    couple_enrol.add_argument("couple", type=int)
    couple_enrol.add_argument("--program", required=True)
    couple_enrol.add_argument("--anchor", help="the couple's medicine session, ISO with offset")
    couple_send = add(couple, "send", cmd_couple_send, "a paired prompt to both partners now")
    couple_send.add_argument("couple", type=int)
    couple_send.add_argument("--prompt", required=True)
    couple_list = add(couple, "list", cmd_couple_list, "list couples")
    couple_list.add_argument("--therapist", type=int)
    add(couple, "show", cmd_couple_show, "both partners side by side: paired answers, what was "
        "shared and what was kept").add_argument("couple", type=int)

    prompt = commands.add_parser("prompt", help="one prompt").add_subparsers(dest="action", required=True)
    send = add(prompt, "send", cmd_prompt_send, "send a prompt to a client now")
    send.add_argument("--client", type=int, required=True)
    send.add_argument("--prompt", required=True)

    export = commands.add_parser("export", help="a client's questionnaires for a health record"
                                 ).add_subparsers(dest="action", required=True)
    add(export, "fhir", cmd_export_fhir, "questionnaires as a FHIR R4 Bundle (always JSON)"
        ).add_argument("--client", type=int, required=True)
    add(export, "scores", cmd_export_scores, "questionnaire scores as CSV (--json: trends)"
        ).add_argument("--client", type=int, required=True)

    replies = add(commands, "replies", cmd_replies, "what a client has answered")
    replies.add_argument("--client", type=int, required=True)

    login = add(commands, "login-link", cmd_login_link,
                "a one-time dashboard sign-in link for a therapist (valid 10 minutes)")
    login.add_argument("therapist_id", type=int)
    audit_log = add(commands, "audit", cmd_audit,
                    "who viewed or changed which client's data, newest first")
    audit_log.add_argument("--therapist", type=int, help="only this therapist's clients")
    audit_log.add_argument("--client", type=int)
    audit_log.add_argument("--limit", type=int, default=500)

    prompts = commands.add_parser("prompts", help="the prompt library").add_subparsers(
        dest="action", required=True)
    add(prompts, "check", cmd_prompts_check, "validate the prompt library")
    add(prompts, "list", cmd_prompts_list, "list programs and prompts")
    alerts = add(commands, "alerts", cmd_alerts, "crisis alerts, newest first")
    alerts.add_argument("--open", action="store_true", help="only those not yet acknowledged")
    alerts_actions = alerts.add_subparsers(dest="action")
    add(alerts_actions, "ack", cmd_alerts_ack, "acknowledge an alert").add_argument("id", type=int)
    report = commands.add_parser("report", help="reports").add_subparsers(dest="action", required=True)
    safety_report = add(report, "safety", cmd_report_safety, "crisis referrals by category, "
                        "and time to acknowledgement")
    safety_report.add_argument("--from", dest="start", required=True, help="a date, e.g. 2026-11-01")
    safety_report.add_argument("--to", dest="end", required=True, help="a date (not included)")
    keys = commands.add_parser("keys", help="encryption keys").add_subparsers(
        dest="action", required=True)
    add(keys, "generate", cmd_keys_generate, "print a new key for INTERLUDE_ENCRYPTION_KEYS")
    rotate = add(keys, "rotate", cmd_keys_rotate, "reseal everything with the current (first) key, "
                 "in batches, while the bot runs")
    rotate.add_argument("--batch", type=int, default=500, help="rows per transaction")
    add(keys, "status", cmd_keys_status, "how many stored values each key sealed")
    bench = commands.add_parser("bench", help="benchmarks against the emulator").add_subparsers(
        dest="action", required=True)
    bench_dispatch = add(bench, "dispatch", cmd_bench_dispatch,
                         "N clients with a prompt due at once, sent at a Telegram limit of L/s")
    bench_dispatch.add_argument("--clients", type=int, default=1000)
    bench_dispatch.add_argument("--rate", type=float, default=30, help="Telegram's limit, per second")
    bench_dispatch.add_argument("--database-url", help="a PostgreSQL URL (default: a temporary SQLite file)")
    bench_ingest = add(bench, "ingest", cmd_bench_ingest,
                       "N replies from simulated clients, stored and acknowledged, limits off")
    bench_ingest.add_argument("--updates", type=int, default=3000, help="replies to send in all")
    bench_ingest.add_argument("--clients", type=int, default=100,
                              help="people answering at once, each waiting for the thanks")
    bench_ingest.add_argument("--database-url", help="a PostgreSQL URL (default: a temporary SQLite file)")
    safety = commands.add_parser("safety", help="crisis screening").add_subparsers(
        dest="action", required=True)
    add(safety, "screen", cmd_safety_screen,
        "screen messages from stdin, one per line; prints one JSON object per line", False)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValueError as error:
        print(f"interlude: the settings have a problem:\n{error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    try:
        args.handler(args, settings)
    except (CommandError, OnboardingError, EncryptionKeyError) as error:
        print(f"interlude: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            print("\nStopped.", file=sys.stderr)


if __name__ == "__main__":
    main()
