"""The therapist's dashboard in a real browser, beside the client's chat page.

Screenshots of the main pages go to test-artifacts/screenshots/ for a reviewer to look at.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta
from typing import Any

import pytest

from bot.db.models import Client
from bot.services import onboarding
from tests.browser.conftest import Live, screenshot

pytestmark = pytest.mark.browser


def sign_in(page: Any, live: Live, therapist_id: int) -> None:
    page.goto(live.login_url(therapist_id))
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live.url}/clients")


def reload_until(page: Any, text: str, within: float = 15) -> None:
    """Reload until the page shows `text` (the bot stores a reply a moment after it is typed)."""
    deadline = time.monotonic() + within
    while text not in page.content():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} did not appear on {page.url}")
        time.sleep(0.3)
        page.reload()


def joined_client(live: Live, therapist_id: int, name: str, **invite: Any) -> int:
    """A client who agreed (their Telegram account is made up; nothing is sent to it)."""
    async def work() -> int:
        async with live.db.transaction() as session:
            issued = await onboarding.invite_client(
                session, therapist_id=therapist_id, name=name, clock=live.clock,
                settings=live.settings, library=live.library, timezone="Europe/Berlin", **invite)
            await onboarding.give_consent(session, issued.token, 800_000 + issued.id, "en",
                                          live.clock, live.settings, live.library)
            client = await session.get(Client, issued.id)
            assert client is not None
            client.timezone = "Europe/Berlin"
        return issued.id
    return live.run(work())


def invite_on_dashboard(page: Any, name: str) -> str:
    """Create an invite from the dashboard's Invite page; returns the invite link it shows."""
    page.get_by_role("link", name="Invite", exact=True).click()
    page.get_by_label("Name or initials").fill(name)
    page.get_by_label("Their time zone").fill("Europe/Berlin")
    page.get_by_role("button", name="Create the invite").click()
    return str(page.get_by_label("Invite link").input_value())


def test_sign_in_by_link_and_a_used_or_expired_link_is_refused(page: Any, live: Live) -> None:
    """The link signs in once; opened again it is refused; a link older than ten minutes too."""
    therapist = live.therapist("Dr Sign-in")
    url = live.login_url(therapist)
    page.goto(url)
    screenshot(page, "01-sign-in-link")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live.url}/clients")
    assert page.get_by_role("heading", name="Clients").is_visible()
    assert "Dr Sign-in" in page.content()

    page.goto(url)
    assert "already been used" in page.content()
    assert page.get_by_role("button", name="Sign in", exact=True).count() == 0

    expiring = live.login_url(therapist)
    live.clock.advance(minutes=10, seconds=5)
    fresh = page.context.browser.new_context()
    other = fresh.new_page()
    other.goto(expiring)
    assert "expired" in other.content()
    screenshot(other, "02-sign-in-link-expired")
    other.goto(f"{live.url}/clients")
    assert other.url == f"{live.url}/signin"
    fresh.close()


def test_invite_enrol_and_see_the_next_planned_prompts(page: Any, live: Live) -> None:
    """Invite a client (link and QR code), preview a program's next ten prompts, and save it."""
    therapist = live.therapist("Dr Planner")
    sign_in(page, live, therapist)
    assert "https://t.me/" in invite_on_dashboard(page, "Jules")
    assert page.locator(".qr svg").is_visible()
    screenshot(page, "03-invite-with-qr-code")

    client_id = joined_client(live, therapist, "Rae")
    page.goto(f"{live.url}/clients/{client_id}")
    page.get_by_label("Program", exact=True).select_option("integration-7day")
    session_day = (live.clock.now() - timedelta(days=1)).strftime("%Y-%m-%dT10:00")
    page.get_by_label("Medicine session, if the program is timed from one").fill(session_day)
    page.get_by_role("button", name="Preview the next prompts").click()
    planned = page.locator("ol.planned > li")
    assert planned.count() == 10
    assert "integration" in planned.first.inner_text()
    screenshot(page, "04-schedule-preview")
    page.get_by_role("button", name="Save: enrol Rae").click()
    assert "Enrolled in" in page.locator(".notice").inner_text()
    assert page.locator("#upcoming ol.planned > li").count() == 10
    screenshot(page, "05-client-after-enrolment")


def test_a_reply_typed_in_the_chat_appears_in_the_timeline(page: Any, live: Live) -> None:
    """The client joins on the chat page, the therapist sends a prompt from the dashboard, the
    client types an answer in the chat, and the answer is in the dashboard's timeline."""
    therapist = live.therapist("Dr Chat")
    sign_in(page, live, therapist)
    link = invite_on_dashboard(page, "Mika")

    chat = page.context.new_page()
    chat.goto(live.emulator.url + "/")
    chat.get_by_label("First name").fill("Mika")
    chat.get_by_role("button", name="Add", exact=True).click()
    chat.get_by_label("Open an invite link").fill(link)
    chat.get_by_role("button", name="Open", exact=True).click()
    for label in ("Yes, I agree", "Yes, that's right", "That suits me"):
        chat.get_by_role("button", name=label).last.click()
    chat.get_by_text("You're all set").wait_for()

    page.get_by_role("link", name="Clients").click()
    page.get_by_role("link", name="Mika").click()
    page.get_by_label("Or your own words").first.fill("What helped you feel steady today?")
    page.get_by_role("button", name="Send now").click()
    chat.get_by_text("What helped you feel steady today?").wait_for()
    chat.get_by_label("Message").fill("Walking by the river after lunch.")
    chat.keyboard.press("Enter")
    chat.get_by_text("I've kept this for your therapist").wait_for()
    screenshot(chat, "06-chat-page")
    reload_until(page, "Walking by the river after lunch.")
    entry = page.locator("ol.timeline > li").first
    assert "What helped you feel steady today?" in entry.inner_text()
    assert "Walking by the river after lunch." in entry.inner_text()
    screenshot(page, "07-timeline-with-reply")


def _history(live: Live, client_id: int) -> None:
    from tests.web.helpers import history

    class Shim:  # the helper needs these four from a Practice
        db, settings, library, clock = live.db, live.settings, live.library, live.clock
    live.run(history(Shim, client_id, days=12, words="Noticed my jaw unclench."))  # type: ignore[arg-type]


def test_charts_render_and_the_csv_export_holds_the_answers(page: Any, live: Live) -> None:
    """Both charts draw every check-in and week; the CSV download has the words and check-ins."""
    therapist = live.therapist("Dr Charts")
    client_id = joined_client(live, therapist, "Noa", program="evening-checkin")
    _history(live, client_id)
    sign_in(page, live, therapist)
    page.goto(f"{live.url}/clients/{client_id}")
    chart = page.locator('svg[data-chart="checkins"]')
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 500
    assert box["height"] > 150
    assert chart.locator(".point").count() == 12
    assert page.locator('svg[data-chart="answers"] rect.bar').count() >= 2
    assert "12 check-ins" in chart.locator("desc").text_content()
    screenshot(page, "08-client-charts-and-timeline")
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, upright
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert chart.bounding_box()["width"] > 600  # type: ignore[index]
    screenshot(page, "08b-client-on-a-tablet")
    page.set_viewport_size({"width": 1280, "height": 900})

    with page.expect_download() as download:
        page.get_by_role("button", name="Replies as CSV").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    assert any(r["answer"] == "Noticed my jaw unclench." for r in rows)
    assert len({r["sent_at"] for r in rows if r["checkin_state"]}) == 12
    page.get_by_role("button", name="Printable summary").click()
    assert page.locator('svg[data-chart="print-checkins"] .point').count() >= 1
    screenshot(page, "09-printable-summary")


def test_another_therapists_client_cannot_be_opened_by_url(page: Any, live: Live) -> None:
    """Typing another therapist's client address shows Not found and nothing of theirs."""
    owner = live.therapist("Dr Owner")
    client_id = joined_client(live, owner, "Private Person")
    stranger = live.therapist("Dr Stranger")
    sign_in(page, live, stranger)
    for path in (f"/clients/{client_id}", f"/clients/{client_id}/export.csv",
                 f"/clients/{client_id}/summary"):
        answer = page.goto(f"{live.url}{path}")
        assert answer is not None
        assert answer.status == 404
        assert "Private Person" not in page.content()
    screenshot(page, "10-not-your-client")


def test_a_form_posted_without_its_csrf_token_is_refused(page: Any, live: Live) -> None:
    """A form whose CSRF field was removed is refused, and nothing changes."""
    therapist = live.therapist("Dr Forms")
    client_id = joined_client(live, therapist, "Ode")
    sign_in(page, live, therapist)
    page.goto(f"{live.url}/clients/{client_id}")
    form = page.locator(f'form[action="/clients/{client_id}/pause"]')
    form.locator('input[name="csrf"]').evaluate("field => field.remove()")
    form.get_by_role("button", name="Pause").click()
    assert "This form has expired" in page.content()
    page.goto(f"{live.url}/clients")
    row = page.get_by_role("row").filter(has_text="Ode")
    assert "Active" in row.inner_text()
    assert "Paused" not in row.inner_text()
    screenshot(page, "11-clients-list")


def test_the_demo_page_shows_the_chat_beside_the_dashboard(page: Any, live: Live) -> None:
    """The demo page holds the chat page and the dashboard; the demo therapist signs in with one
    button and finds Morgan's weeks of check-ins drawn, with the medicine session marked."""
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live.url}/demo")
    chat = page.frame_locator("iframe[title=\"The client's chat\"]")
    dashboard = page.frame_locator("iframe[title=\"The therapist's dashboard\"]")
    chat.get_by_role("button", name="Morgan").wait_for()
    dashboard.get_by_role("button", name="Sign in as the demo therapist").click()
    dashboard.get_by_role("link", name="Morgan").click()
    chart = dashboard.locator('svg[data-chart="checkins"]')
    chart.wait_for()
    assert chart.locator(".point").count() >= 15
    assert chart.locator(".session").count() == 1
    assert "Sam" in page.content()
    assert "Alex" in page.content()
    screenshot(page, "00-demo-page")


def test_the_couple_page_shows_both_partners_side_by_side(page: Any, live: Live) -> None:
    """The demo therapist opens the demo couple from the couples list: both partners' check-ins
    on one chart (circles and diamonds), answers side by side with kept ones marked, and each
    partner's own chat on the demo page."""
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live.url}/demo")
    jo_chat = page.frame_locator("iframe[title=\"Jo's chat\"]")
    ari_chat = page.frame_locator("iframe[title=\"Ari's chat\"]")
    jo_chat.get_by_text("Chatting as Jo").wait_for()
    ari_chat.get_by_text("Chatting as Ari").wait_for()
    couple_frame = page.frame_locator('iframe[title="The couple in the dashboard"]')
    couple_frame.get_by_role("button", name="Sign in as the demo therapist").click()
    couple_frame.get_by_role("heading", name="Jo & Ari", level=1).wait_for()
    page.locator("#couple-demo-h").scroll_into_view_if_needed()
    screenshot(page, "00b-demo-page-couple")

    page.goto(f"{live.url}/couples")
    page.get_by_role("link", name="Jo & Ari").click()
    assert page.get_by_role("heading", name="Jo & Ari", level=1).is_visible()
    chart = page.locator('svg[data-chart="couple-checkins"]')
    assert chart.locator("circle.point.partner-a").count() >= 12
    assert chart.locator("polygon.point.partner-b").count() >= 12
    assert chart.locator(".session").count() == 1
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 500
    first_pair = page.locator("ol.pairs > li").first
    assert first_pair.get_by_role("region", name="Jo's side").is_visible()
    assert first_pair.get_by_role("region", name="Ari's side").is_visible()
    assert page.get_by_text("Kept private, for Jo and you").count() >= 1
    assert page.get_by_text("edited after it was shared").count() == 1
    screenshot(page, "12-couple-side-by-side")
    page.get_by_role("link", name="Jo's record").click()
    page.get_by_role("link", name="both partners side by side").click()
    assert page.get_by_role("heading", name="Jo & Ari", level=1).is_visible()
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, upright
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "12b-couple-on-a-tablet")
