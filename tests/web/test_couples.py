"""A couple in the dashboard and the API: both partners side by side, what was shared and what
was kept, the timing, both partners' check-ins on one chart; linking, enrolling and sending."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.db.models import AuditEntry, Couple, Delivery, Enrolment, PairGroup
from tests.web.conftest import Practice, csrf_of
from tests.web.couple_helpers import (
    KEPT,
    SHARED,
    SHARED_EDITED,
    WAITING,
    couple_history,
    linked_couple,
)


def _pair(page: str, marker: str) -> str:
    """The <li> of the pair group that holds `marker`."""
    at = page.index(marker)
    start = page.rindex('<li class="pair ', 0, at)
    ends = [i for i in (page.find('<li class="pair ', at), page.find("</ol>", at)) if i >= 0]
    return page[start:min(ends)]


def _side(pair: str, name: str) -> str:
    start = pair.index(f'aria-label="{name}\'s side"')
    end = pair.find("</section>", start)
    return pair[start:end]


async def test_the_couple_page_shows_both_answers_what_was_shared_and_what_was_kept(
    practice: Practice,
) -> None:
    """Both answers of a revealed pair side by side: Jules's marked shared (with when), Robin's
    marked kept private and never as shared; an edit after the reveal is flagged with the first
    words kept; an open pair says whom it waits for; newest first."""
    therapist = await practice.therapist()
    ids = await couple_history(practice, therapist)
    browser = await practice.signed_in(therapist)
    answer = await browser.get(f"/couples/{ids['couple']}")
    assert answer.status_code == 200
    page = answer.text
    assert "<h1>Robin &amp; Jules</h1>" in page
    assert page.index(WAITING) < page.index(KEPT)  # newest first
    revealed = _pair(page, KEPT)
    assert "Revealed" in revealed
    robin, jules = _side(revealed, "Robin"), _side(revealed, "Jules")
    assert KEPT in robin
    assert "Kept private" in robin
    assert "Shared with" not in robin
    assert "Chose to share" not in robin
    assert SHARED_EDITED in jules
    assert "✓ Shared with Robin Mon 2 Mar 2026, 12:05" in " ".join(jules.split())
    assert "edited after it was shared" in jules
    assert SHARED in jules  # the first words, under "Earlier words"
    assert practice.library.prompts["couple.felt-close"].text.split()[0] in robin
    waiting = _pair(page, WAITING)
    assert "Waiting for answers" in waiting
    assert "from Jules" in waiting
    assert "no answer" in _side(waiting, "Jules")
    assert f'href="/clients/{ids["robin"]}"' in page
    assert f'href="/clients/{ids["jules"]}"' in page


async def test_the_couple_chart_draws_both_partners_by_shape(practice: Practice) -> None:
    """One chart: Robin's five check-ins as circles, Jules's four as diamonds, each series with
    its own line, both named in the legend and the description, and in the table."""
    therapist = await practice.therapist()
    ids = await couple_history(practice, therapist)
    browser = await practice.signed_in(therapist)
    page = (await browser.get(f"/couples/{ids['couple']}")).text
    chart = page[page.index('data-chart="couple-checkins"'):page.index("</svg>",
                                                                     page.index('data-chart="couple-checkins"'))]
    first = chart[chart.index('data-partner="0"'):chart.index('data-partner="1"')]
    second = chart[chart.index('data-partner="1"'):]
    assert first.count('<circle class="point partner-a"') == 5
    assert second.count('<polygon class="point partner-b"') == 4
    assert 'class="line partner-a"' in first
    assert 'class="line partner-b"' in second
    assert "Robin, 5 check-ins" in chart
    assert "Jules, 4 check-ins" in chart
    assert "Robin (solid line)" in page
    assert "Jules (dashed line)" in page
    at = page.index("Check-ins as a table")
    table = page[at:page.index("</table>", at)]
    assert table.count("<td>Robin</td>") == 5
    assert table.count("<td>Jules</td>") == 4


async def test_each_partners_page_links_to_the_couple_and_every_read_is_audited(
    practice: Practice,
) -> None:
    """A partner's client page links to the couple's view; opening it writes an audit entry for
    both partners, which each partner's access log shows."""
    therapist = await practice.therapist()
    ids = await couple_history(practice, therapist)
    browser = await practice.signed_in(therapist)
    robin_page = (await browser.get(f"/clients/{ids['robin']}")).text
    assert f'href="/couples/{ids["couple"]}"' in robin_page
    assert ">Jules</a>, active" in robin_page
    await browser.get(f"/couples/{ids['couple']}")
    await browser.get(f"/api/couples/{ids['couple']}")
    await browser.get("/couples")
    async with practice.db.transaction() as session:
        rows = list(await session.scalars(select(AuditEntry).where(
            AuditEntry.action.in_(("viewed_couple", "viewed_couple_list")))))
    viewed = {(r.client_id, r.channel) for r in rows if r.action == "viewed_couple"}
    assert viewed == {(ids["robin"], "web"), (ids["jules"], "web"), (ids["robin"], "api"),
                      (ids["jules"], "api")}
    assert any(r.action == "viewed_couple_list" for r in rows)
    assert all(KEPT not in (r.detail or "") for r in rows)
    jules_page = (await browser.get(f"/clients/{ids['jules']}")).text
    access = jules_page[jules_page.index('id="access"'):]
    assert "viewed couple" in access


async def test_the_couples_list_shows_only_this_therapists_couples(practice: Practice) -> None:
    """The list names each couple with its state and programs; another therapist's is absent."""
    mine = await practice.therapist("Dr A")
    other = await practice.therapist("Dr B")
    ids = await couple_history(practice, mine)
    await linked_couple(practice, other, "Kit", "Lee")
    async with practice.db.transaction() as session:
        from bot.services import couples
        await couples.enrol(session, ids["couple"], "couple-weekly-appreciation",
                            practice.library, practice.clock)
    browser = await practice.signed_in(mine)
    page = (await browser.get("/couples")).text
    row = page[page.index("Robin &amp; Jules"):page.index("</tr>", page.index("Robin &amp; Jules"))]
    assert "Active" in row
    assert "Weekly appreciation and need, for a couple" in row
    # As words: the page's random tokens may hold the letters ("…bLeek…").
    assert not re.search(r"\bKit\b", page)
    assert not re.search(r"\bLee\b", page)
    listed = (await browser.get("/api/couples")).json()
    assert [(c["id"], [p["name"] for p in c["partners"]]) for c in listed] == [
        (ids["couple"], ["Robin", "Jules"])]


async def test_linking_enrolling_and_sending_from_the_dashboard(practice: Practice) -> None:
    """The therapist links two clients (each is asked in their own chat), and once both agree
    enrols them in a couple program and sends a paired prompt now, all with CSRF tokens."""
    therapist = await practice.therapist()
    sam = await practice.client(therapist, "Sam")
    alex = await practice.client(therapist, "Alex")
    browser = await practice.signed_in(therapist)
    form = (await browser.get("/couples")).text
    assert re.search(rf'<option value="{sam}"[^>]*>Sam</option>', form)
    linked = await browser.post_form("/couples", {"first": sam, "second": alex,
                                                  "program": "", "anchor": ""})
    assert linked.status_code == 303
    couple_url = linked.headers["location"]
    couple_id = int(couple_url.rsplit("/", 1)[1])
    page = (await browser.get(couple_url)).text
    assert "Each partner is asked in their own chat" in page
    assert "Waiting for agreement" in page
    async with practice.db.transaction() as session:
        asked = list(await session.scalars(select(Delivery.client_id).where(
            Delivery.dedupe_key.startswith(f"cp{couple_id}:pairing"))))
        assert sorted(asked) == sorted([sam, alex])
        from bot.db.models import Client
        from bot.services import couples
        for client_id in (sam, alex):
            client = await session.get(Client, client_id)
            assert client is not None
            await couples.answer_pairing(session, client, couple_id, "s", practice.clock,
                                         practice.library)
    enrolled = await browser.post_form(f"/couples/{couple_id}/enrolments",
                                       {"program": "couple-weekly-appreciation", "anchor": ""})
    assert enrolled.status_code == 303
    sent = await browser.post_form(f"/couples/{couple_id}/send",
                                   {"prompt_key": "couple.small-wish"})
    assert sent.status_code == 303
    refused = await browser.post_form(f"/couples/{couple_id}/send",
                                      {"prompt_key": "checkin.now"})
    assert refused.status_code == 400
    assert "cannot be paired" in refused.text
    async with practice.db.transaction() as session:
        programs = list(await session.scalars(select(Enrolment.program_key).where(
            Enrolment.couple_id == couple_id)))
        groups = list(await session.scalars(select(PairGroup).where(
            PairGroup.couple_id == couple_id)))
    assert programs == ["couple-weekly-appreciation"]
    assert len(groups) == 1
    page = (await browser.get(f"/couples/{couple_id}")).text
    assert "Weekly appreciation and need, for a couple" in page
    assert practice.library.prompts["couple.small-wish"].text in page


async def test_the_api_reads_and_acts_on_a_couple(practice: Practice) -> None:
    """GET one couple side by side (share choices, the edit, check-ins); POST links, enrols and
    sends; OpenAPI describes the routes."""
    therapist = await practice.therapist()
    ids = await couple_history(practice, therapist)
    api = await practice.signed_in(therapist)
    detail = (await api.get(f"/api/couples/{ids['couple']}")).json()
    revealed = next(g for g in detail["pair_groups"] if g["pair_group_id"] == ids["revealed"])
    sides = {s["client_id"]: s for s in revealed["partners"]}
    assert revealed["state"] == "revealed"
    assert sides[ids["robin"]]["shared"] is False
    assert sides[ids["robin"]]["revealed_at"] is None
    assert sides[ids["jules"]]["shared"] is True
    assert sides[ids["jules"]]["answers"][0]["edited_after_reveal"] is True
    assert sides[ids["jules"]]["answers"][0]["earlier_versions"][0]["text"] == SHARED
    assert len(detail["checkins"][str(ids["robin"])]) == 5
    assert len(detail["checkins"][str(ids["jules"])]) == 4
    assert (await api.api("POST", f"/api/couples/{ids['couple']}/prompts",
                          json={"prompt_key": "couple.felt-cared-for"})).status_code == 201
    enrolled = await api.api("POST", f"/api/couples/{ids['couple']}/enrolments",
                             json={"program": "couple-repair-practice"})
    assert enrolled.status_code == 201, enrolled.text
    one = await practice.client(therapist, "Noor")
    two = await practice.client(therapist, "Pat")
    made = await api.api("POST", "/api/couples", json={"first_client_id": one,
                                                      "second_client_id": two})
    assert made.status_code == 201
    async with practice.db.transaction() as session:
        assert await session.get(Couple, made.json()["id"]) is not None
    taken = await api.api("POST", "/api/couples", json={"first_client_id": one,
                                                       "second_client_id": ids["robin"]})
    assert taken.status_code == 400
    spec = (await practice.browser().get("/api/openapi.json")).json()
    assert {"/api/couples", "/api/couples/{couple_id}", "/api/couples/{couple_id}/enrolments",
            "/api/couples/{couple_id}/prompts"} <= set(spec["paths"])


async def test_a_therapist_cannot_link_another_therapists_clients(practice: Practice) -> None:
    """Linking someone else's clients is refused, names none of them, and makes no couple."""
    a = await practice.therapist("Dr A")
    b = await practice.therapist("Dr B")
    robin = await practice.client(a, "Robin")
    jules = await practice.client(a, "Jules")
    own = await practice.client(b, "Kit")
    browser = await practice.signed_in(b)
    for first, second in ((robin, jules), (own, robin)):
        page = await browser.post_form("/couples", {"first": first, "second": second})
        assert page.status_code == 400
        assert "Robin" not in page.text
        assert "Jules" not in page.text
        api = await browser.api("POST", "/api/couples",
                                json={"first_client_id": first, "second_client_id": second})
        assert api.status_code == 400
    listed = (await browser.get("/couples")).text
    assert "Robin" not in listed
    assert "Jules" not in listed
    async with practice.db.transaction() as session:
        assert list(await session.scalars(select(Couple))) == []


async def test_the_demo_seeds_a_couple_beside_both_partners_chats(practice: Practice) -> None:
    """The demo page holds each partner's own chat (chosen by address) and the couple's view,
    which shows weeks of paired prompts (shared, kept, unanswered, edited after the reveal),
    both partners' check-ins and the medicine session."""
    from bot import demo
    from bot.web.app import DemoInfo, WebContext, create_app

    async with practice.db.transaction() as session:
        therapist, _invites = await demo.seed(session, practice.clock, practice.settings,
                                              practice.library)
    web = WebContext(db=practice.db, library=practice.library, clock=practice.clock,
                     settings=practice.settings, secret_key="test-secret-key-0123456789",
                     demo=DemoInfo("http://127.0.0.1:8081", therapist))
    shown = Practice(practice.db, practice.settings, practice.library, practice.clock, web,
                     create_app(web))
    page = (await shown.browser().get("/demo")).text
    for name, telegram_id in demo.PARTNERS:
        assert f'src="http://127.0.0.1:8081/?as={telegram_id}" title="{name}\'s chat"' in page
    couple_id = int(re.search(r'src="/signin\?next=/couples/(\d+)"', page).group(1))  # type: ignore[union-attr]
    visitor = shown.browser()
    signin = await visitor.get(f"/signin?next=/couples/{couple_id}")
    form = {"csrf": csrf_of(signin.text), "next": f"/couples/{couple_id}"}
    assert (await visitor.post("/demo/signin", data=form)).headers["location"] == \
        f"/couples/{couple_id}"
    again = csrf_of((await visitor.get("/signin")).text)  # a new session has a new token
    elsewhere = await visitor.post("/demo/signin", data={"csrf": again,
                                                         "next": "//example.org/"})
    assert elsewhere.headers["location"] == "/clients"  # never off the site
    view = (await visitor.get(f"/couples/{couple_id}")).text
    assert view.count('<li class="pair pair-revealed">') == 5
    assert view.count('<li class="pair pair-expired">') == 1
    assert view.count("⊘ Kept private") >= 2
    assert "edited after it was shared" in view
    assert demo.FIRST_WORDS in view
    chart = view[view.index('data-chart="couple-checkins"'):view.index("</svg>", view.index(
        'data-chart="couple-checkins"'))]
    assert chart.count('class="point partner-a"') >= 12
    assert chart.count('class="point partner-b"') >= 12
    assert chart.count('class="session"') == 1


async def test_a_held_pair_and_an_ended_couple_say_what_happened(practice: Practice) -> None:
    """Crisis language in an answer: the pair is marked held for the therapist, with nothing
    shown as passed on; after /uncouple the open pair reads cancelled, the couple ended, and
    no form offers to send them anything."""
    from bot.db.models import Client
    from bot.safety.rules import load_rules
    from bot.safety.screening import Screener
    from bot.services import couples
    from tests.conftest import ROOT
    from tests.web.couple_helpers import answered

    therapist = await practice.therapist()
    ids = await couple_history(practice, therapist)
    screener = Screener(load_rules(ROOT / "prompts" / "safety.yaml"))
    clock = practice.clock
    async with practice.db.transaction() as session:
        group = await couples.send_now(session, ids["couple"], "couple.felt-cared-for",
                                       practice.library, clock, practice.settings)
        members = list(await session.scalars(select(Delivery).where(
            Delivery.pair_group_id == group.id)))
        for delivery, words in zip(members, ("Some days I want to kill myself.",
                                             "The note on the fridge."), strict=True):
            delivery.sent_at = clock.now()
            await answered(session, delivery, words, clock.now())
        for delivery in members:
            client = await session.get(Client, delivery.client_id)
            assert client is not None
            await couples.choose_share(session, client, delivery.id, True, clock, screener)
        assert group.state.value == "held"
    browser = await practice.signed_in(therapist)
    held = _pair((await browser.get(f"/couples/{ids['couple']}")).text, "The note on the fridge.")
    assert "Held for you" in held
    assert "nothing was passed on to either partner" in held
    assert "Shared with" not in held  # chosen, but never passed on
    assert held.count("Chose to share; not passed on") == 2

    async with practice.db.transaction() as session:
        robin = await session.get(Client, ids["robin"])
        assert robin is not None
        await couples.uncouple(session, robin, clock)
    page = (await browser.get(f"/couples/{ids['couple']}")).text
    assert "Ended" in page
    cancelled = _pair(page, WAITING)
    assert "Cancelled" in cancelled
    assert "when the couple ended; nothing was passed on" in cancelled
    assert f'action="/couples/{ids["couple"]}/send"' not in page
    assert f'action="/couples/{ids["couple"]}/enrolments"' not in page
    assert "(a partner ended pairing)" in (await browser.get("/couples")).text
