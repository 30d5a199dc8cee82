"""The product as an admin runs it: emulator, bot and CLI as separate processes, one database."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import Settings
from tests.conftest import CLASSIFIER_CACHE, ROOT, TEST_ENCRYPTION_KEY, make_settings

INTERLUDE = [sys.executable, "-m", "bot.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path, backend: str, database_url: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("INTERLUDE_")}
    if backend == "postgresql":  # SQLite keeps the default: a file in the data folder
        environment["INTERLUDE_DATABASE_URL"] = database_url
    environment.update(
        {
            "INTERLUDE_DATA_DIR": str(tmp_path),
            "INTERLUDE_PROMPTS_DIR": str(ROOT / "prompts"),
            "INTERLUDE_DEFAULT_TIMEZONE": "Europe/Berlin",
            "INTERLUDE_POLL_TIMEOUT_SECONDS": "1",
            "INTERLUDE_DISPATCH_INTERVAL_SECONDS": "0.3",
            "INTERLUDE_WEB_PORT": str(free_port()),
            # What the tests' own connections use (make_settings), so both sides read each
            # other's sealed columns and agree on which consent version is current.
            "INTERLUDE_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
            # Each process trains the crisis classifier once for the whole run, not once a test.
            "INTERLUDE_CLASSIFIER_CACHE_DIR": str(CLASSIFIER_CACHE),
            "INTERLUDE_PRACTICE_NAME": make_settings(Path(".")).practice_name,
        }
    )
    return environment


def cli(env: dict[str, str], *args: str) -> Any:
    """Run `interlude ARGS --json` and return its one JSON document."""
    done = subprocess.run(
        [*INTERLUDE, *args, "--json"],
        env=env,
        cwd=env["INTERLUDE_DATA_DIR"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def emulator_process(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [*INTERLUDE, "emulator", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{url}/emulator/stats", timeout=1).status_code == 200)
    env["INTERLUDE_TELEGRAM_API_URL"] = url
    yield url
    process.terminate()
    process.wait(timeout=10)


def wait_until(check: Any, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, OSError, KeyError, IndexError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the processes did not get there in time")
        time.sleep(0.1)


def test_cli_prints_json_for_scripts(env: dict[str, str]) -> None:
    """therapist add, client invite, client list and prompts check each print one JSON document."""
    therapist = cli(env, "therapist", "add", "Dr Rivera")
    assert set(therapist) == {"id", "link"}
    assert therapist["link"].startswith("https://t.me/InterludeDemoBot?start=t_")
    invite = cli(
        env,
        "client",
        "invite",
        "--therapist",
        str(therapist["id"]),
        "--name",
        "A.",
        "--program",
        "integration-7day",
        "--anchor",
        "2026-12-01T10:00+01:00",
        "--tz",
        "Europe/Berlin",
    )
    assert set(invite) == {"client_id", "token", "link"}
    assert invite["link"] == f"https://t.me/InterludeDemoBot?start={invite['token']}"
    assert cli(env, "client", "list")[0]["status"] == "invited"
    assert cli(env, "prompts", "check")["ok"] is True
    assert cli(env, "replies", "--client", str(invite["client_id"])) == []
    assert cli(env, "alerts") == []
    report = cli(env, "report", "safety", "--from", "2026-11-01", "--to", "2026-12-01")
    assert (report["alerts"], report["open"]) == (0, 0)


def test_cli_mistakes_get_one_plain_line(env: dict[str, str]) -> None:
    """A wrong program or a missing anchor is explained in a sentence, not a traceback."""
    cli(env, "therapist", "add", "Dr Rivera")
    for args, expected in (
        (["--program", "no-such-program"], "there is no program 'no-such-program'"),
        (["--program", "integration-7day"], "needs --anchor"),
        (["--tz", "Mars/Olympus"], "not an IANA time zone"),
    ):
        done = subprocess.run(
            [*INTERLUDE, "client", "invite", "--therapist", "1", "--name", "B.", *args],
            env=env,
            cwd=env["INTERLUDE_DATA_DIR"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1
        assert expected in done.stderr
        assert "Traceback" not in done.stderr


def test_emulator_bot_and_cli_as_separate_processes(env: dict[str, str], emulator_process: str) -> None:
    """An admin invites, a client joins, a one-off prompt is sent and the answer is read back."""
    therapist = cli(env, "therapist", "add", "Dr Rivera")
    invite = cli(
        env, "client", "invite", "--therapist", str(therapist["id"]), "--name", "Sam", "--tz", "Europe/Berlin"
    )
    bot = subprocess.Popen(
        [*INTERLUDE, "run"],
        env=env,
        cwd=env["INTERLUDE_DATA_DIR"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    control = httpx.Client(base_url=emulator_process, timeout=10)
    try:
        user = control.post("/emulator/users", json={"first_name": "Sam"}).json()["id"]

        def bot_said() -> list[dict[str, Any]]:
            messages = control.get(f"/emulator/chats/{user}").json()["messages"]
            return [m for m in messages if m["from"]["is_bot"]]

        def tap(label: str, within: float = 20.0) -> None:
            def newest_with_button() -> dict[str, Any] | None:
                for message in reversed(bot_said()):
                    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
                    if any(button["text"] == label for row in rows for button in row):
                        return message
                return None

            message = wait_until(newest_with_button, within)
            control.post(
                f"/emulator/users/{user}/press",
                json={"message_id": message["message_id"], "button_text": label},
            )

        control.post(f"/emulator/users/{user}/messages", json={"text": f"/start {invite['token']}"})
        tap("Yes, I agree", within=90)  # the bot's process may still be starting on a busy machine
        tap("Yes, that's right")
        # Quiet hours that never cover the machine's current time, so the prompt goes now.
        tap("Change quiet hours")
        wait_until(lambda: "stay quiet" in bot_said()[-1]["text"])
        control.post(f"/emulator/users/{user}/messages", json={"text": _quiet_hours_elsewhere()})
        wait_until(lambda: "You're all set" in bot_said()[-1]["text"])

        queued = cli(
            env, "prompt", "send", "--client", str(invite["client_id"]), "--prompt", "integration.body-after"
        )
        assert "delivery_id" in queued
        prompt = wait_until(lambda: next((m for m in bot_said() if "body" in m["text"]), None))
        control.post(
            f"/emulator/users/{user}/messages",
            json={"text": "Warm, heavy shoulders.", "reply_to_message_id": prompt["message_id"]},
        )
        wait_until(lambda: "kept this" in bot_said()[-1]["text"])
        replies = cli(env, "replies", "--client", str(invite["client_id"]))
        assert replies[-1]["prompt_key"] == "integration.body-after"
        assert replies[-1]["replies"][0]["text"] == "Warm, heavy shoulders."
        _dashboard_shows_the_answer(env, therapist["id"], invite["client_id"])
        # Default limits on both sides: the bot paced itself and Telegram never said 429.
        assert control.get("/emulator/stats").json()["rate_limited"] == 0
    finally:
        control.close()
        bot.terminate()
        output, _ = bot.communicate(timeout=20)
    assert bot.returncode == 0, output
    assert "Warm, heavy shoulders" not in output  # no client text in the bot's log


def _dashboard_shows_the_answer(env: dict[str, str], therapist_id: int, client_id: int) -> None:
    """The bot's process serves the dashboard: a printed sign-in link opens it, the answer is on
    the client's page, and the admin's audit log shows who read what."""
    import re

    url = cli(env, "login-link", str(therapist_id))["url"]
    assert url.startswith(f"http://127.0.0.1:{env['INTERLUDE_WEB_PORT']}/login/")
    with httpx.Client(timeout=10) as browser:
        page = wait_until(lambda: browser.get(url))
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert csrf is not None
        signed = browser.post(url, data={"csrf": csrf.group(1)}, follow_redirects=True)
        assert signed.status_code == 200
        assert "Sam" in signed.text
        record = browser.get(url.split("/login/")[0] + f"/clients/{client_id}")
        assert "Warm, heavy shoulders." in record.text
    actions = {(row["action"], row["channel"]) for row in cli(env, "audit")}
    assert {("viewed_replies", "cli"), ("viewed_client", "web")} <= actions


def _quiet_hours_elsewhere() -> str:
    """Quiet hours from 6 to 5 hours before now in Berlin: the present is never inside them."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    now = datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin"))
    return f"{(now - timedelta(hours=6)):%H:00}-{(now - timedelta(hours=5)):%H:00}"


def test_keys_generate_rotate_and_status_from_the_command_line(env: dict[str, str]) -> None:
    """The admin rotates keys: new key first, `keys rotate`, then the old key can go."""
    old, new = cli(env, "keys", "generate")["key"], cli(env, "keys", "generate")["key"]
    env["INTERLUDE_ENCRYPTION_KEYS"] = old
    therapist = cli(env, "therapist", "add", "Dr Rivera")
    cli(env, "client", "invite", "--therapist", str(therapist["id"]), "--name", "Sam")

    env["INTERLUDE_ENCRYPTION_KEYS"] = f"{new},{old}"
    before = {row["current"]: row["values"] for row in cli(env, "keys", "status")}
    assert before == {True: 0, False: 2}
    assert cli(env, "keys", "rotate", "--batch", "1")["total"] == 2
    after = {row["current"]: row["values"] for row in cli(env, "keys", "status")}
    assert after == {True: 2, False: 0}

    env["INTERLUDE_ENCRYPTION_KEYS"] = new
    assert [c["name"] for c in cli(env, "client", "list")] == ["Sam"]


def test_a_practice_without_keys_is_told_how_to_make_one(env: dict[str, str]) -> None:
    env["INTERLUDE_TELEGRAM_TOKEN"] = "123:abc"
    del env["INTERLUDE_ENCRYPTION_KEYS"]
    done = subprocess.run([*INTERLUDE, "therapist", "list"], env=env, cwd=env["INTERLUDE_DATA_DIR"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "INTERLUDE_ENCRYPTION_KEYS is not set" in done.stderr
    assert "Traceback" not in done.stderr


async def _enrol(settings: Settings, users: list[int]) -> list[int]:
    """Consenting clients for these emulator users, with no quiet hours (prompts go now)."""
    from bot.clock import SystemClock
    from bot.db.engine import Database
    from bot.db.migrate import upgrade
    from bot.db.models import Client
    from bot.library import load_library
    from tests.integration.helpers import active_client

    library = load_library(ROOT / "prompts")
    db = Database.from_url(settings.sqlalchemy_url)
    await upgrade(db.engine)
    ids = []
    for user in users:
        client_id = await active_client(db, SystemClock(), settings, library, program=None,
                                        telegram_id=user, name=f"C{user}")
        async with db.transaction() as session:
            client = await session.get(Client, client_id)
            assert client is not None
            client.quiet_start = client.quiet_end = "00:00"
        ids.append(client_id)
    await db.dispose()
    return ids


async def _queue(settings: Settings, ids: list[int]) -> None:
    """A prompt due now for each client, as `interlude prompt send` queues one."""
    from bot.clock import SystemClock
    from bot.db.engine import Database
    from bot.library import load_library
    from bot.services import review

    library = load_library(ROOT / "prompts")
    db = Database.from_url(settings.sqlalchemy_url)
    async with db.transaction() as session:
        for client_id in ids:
            await review.send_now(session, client_id=client_id, prompt_key="integration.body-after",
                                  library=library, clock=SystemClock(), settings=settings)
    await db.dispose()


def _users(control: httpx.Client, count: int) -> list[int]:
    control.post("/emulator/config", json={"require_user_start": False})
    return [control.post("/emulator/users", json={"first_name": f"C{n}"}).json()["id"] for n in range(count)]


def _start_bot(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    env = {**env, "INTERLUDE_WEB_PORT": str(free_port())}  # each process serves its dashboard
    return subprocess.Popen([*INTERLUDE, "run"], env=env, cwd=env["INTERLUDE_DATA_DIR"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_two_bot_processes_share_the_prompts_and_send_each_once(
    env: dict[str, str], emulator_process: str, tmp_path: Path, backend: str
) -> None:
    """Two `interlude run` processes on one PostgreSQL database send 60 due prompts, each once."""
    if backend == "sqlite":
        pytest.skip("several bot processes need PostgreSQL; SQLite runs one")
    control = httpx.Client(base_url=emulator_process, timeout=10)
    users = _users(control, 60)
    settings = make_settings(tmp_path, database_url=env.get("INTERLUDE_DATABASE_URL"))
    ids = asyncio.run(_enrol(settings, users))
    env = {**env, "INTERLUDE_DISPATCH_INTERVAL_SECONDS": "0.2", "INTERLUDE_DISPATCH_BATCH": "10",
           "INTERLUDE_LOG_LEVEL": "DEBUG"}
    logs = [tmp_path / f"bot{n}.log" for n in range(2)]
    bots = [_start_bot(env, log) for log in logs]
    try:
        wait_until(lambda: all("is running" in log.read_text() for log in logs), within=60)
        asyncio.run(_queue(settings, ids))

        def delivered() -> dict[str, int]:
            counts = control.get("/emulator/stats").json()["delivered"]
            return counts if len(counts) >= len(users) else {}

        wait_until(delivered, within=60)
        time.sleep(0.5)  # anything sent twice would arrive by now
        stats = control.get("/emulator/stats").json()
        counts = stats["delivered"]
    finally:
        for bot in bots:
            bot.terminate()
        for bot in bots:
            bot.wait(timeout=20)
        control.close()
    assert sorted(counts) == sorted(str(user) for user in users)
    assert set(counts.values()) == {1}, "a prompt was sent twice"
    # Telegram's default limits on the emulator: together the processes kept to 30/s.
    assert stats["rate_limited"] == 0
    shares = [sum(int(n) for n in re.findall(r"sent (\d+) prompts", log.read_text())) for log in logs]
    assert sum(shares) == 60
    assert all(share > 0 for share in shares), f"one process did all the work: {shares}"


def test_a_bot_killed_mid_dispatch_loses_nothing_after_a_restart(
    env: dict[str, str], emulator_process: str, tmp_path: Path
) -> None:
    """kill -9 while 120 prompts go out at 30/s; after a restart every client has theirs, and
    no more were sent twice than were in flight at the kill (two seconds' worth)."""
    control = httpx.Client(base_url=emulator_process, timeout=10)
    users = _users(control, 120)
    settings = make_settings(tmp_path, database_url=env.get("INTERLUDE_DATABASE_URL"))
    ids = asyncio.run(_enrol(settings, users))
    env = {**env, "INTERLUDE_DISPATCH_INTERVAL_SECONDS": "0.2", "INTERLUDE_SEND_LEASE_SECONDS": "2"}
    asyncio.run(_queue(settings, ids))
    bot = _start_bot(env, tmp_path / "first.log")
    try:
        wait_until(lambda: len(control.get("/emulator/stats").json()["delivered"]) >= 30, within=60)
        bot.kill()
        bot.wait(timeout=10)
        at_kill = len(control.get("/emulator/stats").json()["delivered"])
        assert at_kill < len(users), "the kill came too late to prove anything"
        bot = _start_bot(env, tmp_path / "second.log")

        def all_delivered() -> dict[str, int]:
            counts = control.get("/emulator/stats").json()["delivered"]
            return counts if len(counts) >= len(users) else {}

        counts = wait_until(all_delivered, within=90)
    finally:
        bot.terminate()
        bot.wait(timeout=20)
        control.close()
    assert sorted(counts) == sorted(str(user) for user in users), "a prompt was lost"
    duplicates = sum(count - 1 for count in counts.values())
    print(f"killed after {at_kill} of {len(users)} delivered; {duplicates} sent twice")
    assert duplicates <= 60


def test_the_bot_runs_behind_a_webhook(env: dict[str, str], emulator_process: str, tmp_path: Path) -> None:
    """`interlude run --webhook URL` sets the webhook with a secret and answers what arrives."""
    port = free_port()
    env = {**env, "INTERLUDE_WEBHOOK_PORT": str(port)}
    bot = _start_bot_with(env, tmp_path / "bot.log", "--webhook", f"http://127.0.0.1:{port}/telegram/webhook")
    control = httpx.Client(base_url=emulator_process, timeout=10)
    try:
        wait_until(lambda: "is running" in (tmp_path / "bot.log").read_text(), within=60)
        user = control.post("/emulator/users", json={"first_name": "Sam"}).json()["id"]
        control.post(f"/emulator/users/{user}/messages", json={"text": "/help"})

        def answered() -> list[dict[str, Any]]:
            messages = control.get(f"/emulator/chats/{user}").json()["messages"]
            return [m for m in messages if m["from"]["is_bot"]]

        assert wait_until(answered)
        stats = control.get("/emulator/stats").json()
        assert stats["webhook_pushes"] >= 1
        assert stats["methods"].get("getUpdates", 0) == 0
        forged = httpx.post(f"http://127.0.0.1:{port}/telegram/webhook", json={"update_id": 1}, timeout=10)
        assert forged.status_code == 403
    finally:
        control.close()
        bot.terminate()
        bot.wait(timeout=20)
    assert bot.returncode == 0, (tmp_path / "bot.log").read_text()


def _start_bot_with(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*INTERLUDE, "run", *args], env=env, cwd=env["INTERLUDE_DATA_DIR"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


async def _stored_replies(settings: Settings) -> list[tuple[int, int]]:
    """(Telegram user, message id) of every stored reply, duplicates included."""
    from sqlalchemy import select

    from bot.db.engine import Database
    from bot.db.models import Client, Reply

    db = Database.from_url(settings.sqlalchemy_url)
    async with db.transaction() as session:
        rows = (await session.execute(select(Client.telegram_user_id, Reply.telegram_message_id)
                                      .join(Client, Client.id == Reply.client_id))).all()
    await db.dispose()
    return [(int(user), int(message)) for user, message in rows]


def test_a_bot_killed_while_replies_arrive_stores_each_once(
    env: dict[str, str], emulator_process: str, tmp_path: Path
) -> None:
    """kill -9 while 30 people's replies are being handled, more written while it is down: after
    a restart every reply is stored exactly once."""
    control = httpx.Client(base_url=emulator_process, timeout=10)
    users = _users(control, 30)
    settings = make_settings(tmp_path, database_url=env.get("INTERLUDE_DATABASE_URL"))
    asyncio.run(_enrol(settings, users))
    sent: list[tuple[int, int]] = []

    def write(rounds: int) -> None:
        for number in range(rounds):
            for user in users:
                posted = control.post(f"/emulator/users/{user}/messages",
                                      json={"text": f"a quieter day, reply {number}"})
                sent.append((user, posted.json()["message_id"]))

    log = tmp_path / "first.log"
    bot = _start_bot(env, log)
    try:
        wait_until(lambda: "is running" in log.read_text(), within=60)
        write(3)
        wait_until(lambda: len(asyncio.run(_stored_replies(settings))) >= 15, within=60)
        bot.kill()
        bot.wait(timeout=10)
        at_kill = len(asyncio.run(_stored_replies(settings)))
        write(2)
        bot = _start_bot(env, tmp_path / "second.log")
        stored = wait_until(lambda: (rows := asyncio.run(_stored_replies(settings)))
                            and len(rows) >= len(sent) and rows, within=90)
    finally:
        bot.terminate()
        bot.wait(timeout=20)
        control.close()
    print(f"killed with {at_kill} of {len(sent)} replies stored")
    assert at_kill < len(sent), "the kill came too late to prove anything"
    assert sorted(stored) == sorted(sent), "a reply was lost or stored twice"
