"""The dashboard's pages as a therapist uses them: clients, one client's record, schedules,
invites, the library, exports, alerts and the audit log."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from sqlalchemy import select

from bot.db.models import AuditEntry, Delivery, DeliveryStatus, Enrolment
from tests.web.conftest import Practice
from tests.web.helpers import history


async def test_client_list_shows_status_last_reply_rate_and_alerts(practice: Practice) -> None:
    """Each client's status, program, last reply, 14-day answer rate and open alerts; filters work."""
    therapist = await practice.therapist()
    robin = await practice.client(therapist, "Robin", program="evening-checkin")
    await history(practice, robin, days=10)
    await practice.client(therapist, "Kai", joined=False)
    browser = await practice.signed_in(therapist)
    page = (await browser.get("/clients")).text
    robin_row = page[page.index(">Robin<"):page.index("</tr>", page.index(">Robin<"))]
    assert "Active" in robin_row
    assert "Evening check-in" in robin_row
    assert "19 hours ago" in robin_row  # the voice note came last
    assert "91%" in robin_row
    assert "10 of 11" in robin_row
    assert 'class="alert-count"' in robin_row
    assert "Invited" in page[page.index(">Kai<"):]
    filtered = (await browser.get("/clients", params={"status": "invited"})).text
    assert ">Kai<" in filtered
    assert ">Robin<" not in filtered
    searched = (await browser.get("/clients", params={"q": "rob"})).text
    assert ">Robin<" in searched
    assert ">Kai<" not in searched
    alerts_only = (await browser.get("/clients", params={"alerts": "true"})).text
    assert ">Robin<" in alerts_only
    assert ">Kai<" not in alerts_only


async def test_client_page_shows_timeline_charts_and_next_prompts(practice: Practice) -> None:
    """The timeline has the prompt as sent and the words, a playable voice note, both charts
    with every check-in, and the next prompts in the client's local time."""
    therapist = await practice.therapist()
    robin = await practice.client(therapist, "Robin", program="evening-checkin")
    ids = await history(practice, robin, days=10, words="Breathing came easier <b>tonight</b>.")
    browser = await practice.signed_in(therapist)
    page = (await browser.get(f"/clients/{robin}")).text
    assert practice.library.prompts["checkin.evening"].text in page
    assert "Breathing came easier &lt;b&gt;tonight&lt;/b&gt;." in page  # escaped, never markup
    assert f'src="/clients/{robin}/voice/{ids["voice"]}"' in page
    audio = await browser.get(f"/clients/{robin}/voice/{ids['voice']}")
    assert audio.content == b"OggS-voice"
    assert audio.headers["content-type"] == "audio/ogg"
    assert page.count('class="point ') == 10
    assert 'data-chart="answers"' in page
    assert "10 check-ins" in page
    upcoming = page[page.index('id="upcoming"'):page.index('id="schedule"')]
    assert upcoming.count("<li>") == 10
    assert "Mon 2 Mar 2026, 20:00" in upcoming  # 19:00 UTC is 20:00 in Berlin
    assert "Evening check-in" in upcoming


async def test_enrolment_is_previewed_then_saved_and_planned(practice: Practice) -> None:
    """The preview lists the next ten prompts with the program, in local time, and saves nothing;
    saving enrols the client and the planner plans from it."""
    therapist = await practice.therapist()
    robin = await practice.client(therapist, "Robin")
    browser = await practice.signed_in(therapist)
    preview = await browser.get(f"/clients/{robin}/schedule/preview",
                                params={"program": "integration-7day", "anchor": "2026-03-01T18:00"})
    assert preview.status_code == 200
    planned = preview.text[preview.text.index('class="planned"'):]
    assert planned.count("<li>") == 10
    assert "Mon 2 Mar 2026" in planned
    assert "integration" in planned
    async with practice.db.transaction() as session:
        assert await session.scalar(select(Enrolment.id).where(Enrolment.client_id == robin)) is None
    saved = await browser.post_form(f"/clients/{robin}/enrolments",
                                    {"program": "integration-7day", "anchor": "2026-03-01T18:00"})
    assert saved.status_code == 303
    async with practice.db.transaction() as session:
        enrolment = await session.scalar(select(Enrolment).where(Enrolment.client_id == robin))
    assert enrolment is not None
    assert enrolment.anchor_at == datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
    page = (await browser.get(f"/clients/{robin}")).text
    assert "Enrolled in" in page
    # A program that needs the medicine session says so instead of guessing.
    refused = await browser.get(f"/clients/{robin}/schedule/preview",
                                params={"program": "integration-7day"})
    assert refused.status_code == 400
    assert "medicine session" in refused.text


async def test_schedule_changes_send_now_pause_and_medicine_session(practice: Practice) -> None:
    """A one-off goes into the outbox, a personal recurring prompt is planned, a pause shows,
    and a new medicine session moves the integration program to it."""
    therapist = await practice.therapist()
    robin = await practice.client(therapist, "Robin", program="integration-7day",
                                  anchor=datetime(2026, 3, 1, 9, tzinfo=UTC))
    browser = await practice.signed_in(therapist)
    assert (await browser.post_form(f"/clients/{robin}/send",
                                    {"text": "How did the walk feel?"})).status_code == 303
    async with practice.db.transaction() as session:
        one_off = await session.scalar(select(Delivery).where(Delivery.enrolment_id.is_(None)))
    assert one_off is not None
    assert one_off.prompt["text"] == "How did the walk feel?"
    assert one_off.status is DeliveryStatus.PENDING
    added = await browser.post_form(f"/clients/{robin}/custom", {
        "text": "Notice when the 'too much' part shows up.", "at": "19:30", "days": ["mon", "thu"]})
    assert added.status_code == 303
    page = (await browser.get(f"/clients/{robin}")).text
    assert "Notice when the &#39;too much&#39; part shows up." in page
    assert "Personal prompt" in page
    assert "Thu 5 Mar 2026, 19:30" in page
    await browser.post_form(f"/clients/{robin}/pause", {"days": "7"})
    assert "Paused" in (await browser.get("/clients")).text
    moved = await browser.post_form(f"/clients/{robin}/sessions",
                                     {"at": "2026-03-10T10:00", "reanchor": "true"})
    assert moved.status_code == 303
    async with practice.db.transaction() as session:
        running = list(await session.scalars(select(Enrolment).where(
            Enrolment.client_id == robin, Enrolment.ended_at.is_(None),
            Enrolment.program_key == "integration-7day")))
    assert [e.anchor_at for e in running] == [datetime(2026, 3, 10, 9, tzinfo=UTC)]
    page = (await browser.get(f"/clients/{robin}")).text
    assert "1 integration program(s) now run from it" in page
    assert "medicine session" in page


async def test_inviting_shows_a_link_and_a_qr_code(practice: Practice) -> None:
    """A new client gets a deep link to the bot and a scannable QR code of that link."""
    therapist = await practice.therapist()
    browser = await practice.signed_in(therapist)
    page = await browser.post_form("/clients", {"name": "Alex", "program": "evening-checkin",
                                                "timezone": "Europe/Berlin"})
    assert page.status_code == 200
    assert "https://t.me/InterludeDemoBot?start=" in page.text
    assert "<svg" in page.text
    assert "<path" in page.text
    assert ">Alex<" in (await browser.get("/clients")).text


async def test_library_preview_looks_like_telegram(practice: Practice) -> None:
    """A check-in shows its text and the state buttons the client will tap."""
    therapist = await practice.therapist()
    browser = await practice.signed_in(therapist)
    page = (await browser.get("/library/prompts/checkin.now")).text
    assert practice.library.prompts["checkin.now"].text in page
    for label in ("Grounded", "Activated", "Shut down"):
        assert f'<span class="kb-button">{label}</span>' in page
    assert "Evening check-in" in (await browser.get("/library")).text
    assert (await browser.get("/library/prompts/no-such")).status_code == 404


async def test_exports_hold_every_answer(practice: Practice) -> None:
    """CSV and JSON exports carry the prompt as sent, the words and the check-ins; a cell
    that looks like a formula is kept as text."""
    therapist = await practice.therapist()
    robin = await practice.client(therapist, "Robin")
    await history(practice, robin, days=3, words="=HYPERLINK(\"x\") felt calmer")
    browser = await practice.signed_in(therapist)
    answer = await browser.get(f"/clients/{robin}/export.csv")
    assert answer.headers["content-disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    words = [r for r in rows if r["answer_kind"] == "text"]
    assert words[0]["answer"] == "'=HYPERLINK(\"x\") felt calmer"
    assert words[0]["prompt_text"] == practice.library.prompts["checkin.evening"].text
    assert sum(1 for r in rows if r["checkin_state"]) >= 3
    exported = json.loads((await browser.get(f"/clients/{robin}/export.json")).text)
    assert exported["client"]["name"] == "Robin"
    assert any(a["text"] == "=HYPERLINK(\"x\") felt calmer"
               for e in exported["entries"] for a in e["answers"])
    summary = await browser.get(f"/clients/{robin}/summary",
                                params={"start": "2026-02-20", "end": "2026-03-02"})
    assert summary.status_code == 200
    assert 'data-chart="print-checkins"' in summary.text


async def test_every_view_and_change_is_audited_and_shown(practice: Practice) -> None:
    """Reads and changes are written with who, what and which client; the therapist sees the
    entries about their own clients only; no client text is in the log."""
    a = await practice.therapist("Dr A")
    b = await practice.therapist("Dr B")
    robin = await practice.client(a, "Robin")
    other = await practice.client(b, "Noor")
    await history(practice, robin, days=2, words="secret words")
    browser_a = await practice.signed_in(a)
    browser_b = await practice.signed_in(b)
    await browser_a.get(f"/clients/{robin}")
    await browser_a.get(f"/clients/{robin}/export.csv")
    await browser_a.post_form(f"/clients/{robin}/pause", {"days": "3"})
    await browser_b.get(f"/clients/{other}")
    async with practice.db.transaction() as session:
        rows = list(await session.scalars(select(AuditEntry).where(AuditEntry.client_id == robin)))
    assert {(r.therapist_id, r.action) for r in rows} >= {
        (a, "viewed_client"), (a, "exported"), (a, "paused")}
    assert all("secret" not in (r.detail or "") for r in rows)
    page = (await browser_a.get("/audit")).text
    assert "viewed client" in page
    assert "exported" in page
    assert "Noor" not in page
    access = (await browser_a.get(f"/clients/{robin}")).text
    assert "paused · web" in access


async def test_alerts_are_listed_and_acknowledged(practice: Practice) -> None:
    """A therapist sees their open alerts and acknowledges one; it no longer counts as open."""
    therapist = await practice.therapist()
    robin = await practice.client(therapist, "Robin")
    ids = await history(practice, robin, days=1)
    browser = await practice.signed_in(therapist)
    page = (await browser.get("/alerts")).text
    assert "self-harm" in page
    assert "Robin" in page
    done = await browser.post_form(f"/alerts/{ids['alert']}/ack", {"next": "/clients"})
    assert done.status_code == 303
    assert done.headers["location"] == "/clients"
    assert 'class="alert-count"' not in (await browser.get("/clients")).text


async def test_the_demo_pages_exist_only_in_the_demo(practice: Practice) -> None:
    """A real practice has no demo page and no sign-in without a link."""
    therapist = await practice.therapist()
    browser = await practice.signed_in(therapist)
    assert (await browser.get("/demo")).status_code == 404
    assert (await browser.post_form("/demo/signin")).status_code == 404
    assert "Sign in as the demo therapist" not in (await practice.browser().get("/signin")).text


async def test_a_clients_own_alert_thresholds(practice: Practice) -> None:
    """The therapist sets a client's own check-in thresholds and can return to the practice's."""
    therapist = await practice.therapist()
    robin = await practice.client(therapist, "Robin")
    browser = await practice.signed_in(therapist)
    assert "two check-ins at 9 or more, or 3 days shut down (the practice" in \
        (await browser.get(f"/clients/{robin}")).text
    await browser.post_form(f"/clients/{robin}/thresholds", {"intensity": "7", "shutdown_days": "2"})
    assert "two check-ins at 7 or more, or 2 days shut down." in (await browser.get(f"/clients/{robin}")).text
    refused = await browser.post_form(f"/clients/{robin}/thresholds", {"intensity": "12"})
    assert refused.status_code == 400
    await browser.post_form(f"/clients/{robin}/thresholds", {"intensity": "", "shutdown_days": ""})
    assert "9 or more, or 3 days shut down (the practice" in (await browser.get(f"/clients/{robin}")).text


async def test_settings_page_states_the_retention_policy(practice: Practice) -> None:
    """The dashboard says how long answers are kept, as the practice configured it."""
    therapist = await practice.therapist()
    browser = await practice.signed_in(therapist)
    page = (await browser.get("/settings")).text
    days = practice.settings.reply_retention_days
    assert f"Replies and check-ins are deleted {days} days after they were written" in page
