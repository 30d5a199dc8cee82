"""The shipped prompt library in prompts/: it loads, it is complete, and it speaks in the practice's voice."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.library.loader import Library, LibraryError, load_library
from bot.library.schema import Program, Prompt, PromptKind, ResponseType, Step

TEXT_LIMIT = 3500
BUTTON_LIMIT = 40

# Words the practice's voice never uses with clients (case-insensitive, whole words).
_LABELS = r"(?:avoidant|anxious|disorgani[sz]ed|insecure|clingy|needy|co-?dependent|broken)"
BANNED = {
    "should": r"\bshould\b",
    "must": r"\bmust\b",
    "disorder": r"\bdisorder(?:s|ed)?\b",
    "diagnosis": r"\bdiagnos\w*",
    "symptom": r"\bsymptom\w*",
    "patient": r"\bpatients?\b",
    "clinical jargon": r"\b(?:dissociat\w*|dysregulat\w*|patholog\w*|psychoti\w*)",
    "medical advice": r"\b(?:dose|doses|dosage|dosing|medications?|prescri\w*)\b",
    "label": (
        r"\b(?:you\s+are|you['’]re|your\s+partner\s+is|they\s+are|they['’]re|i\s+am|i['’]m)"
        rf"\s+(?:so\s+|too\s+|just\s+|an?\s+)?{_LABELS}\b"
    ),
    "attachment label": rf"\b{_LABELS}(?:ly)?\s+(?:attached|attachment|type|style|person|partner)\b",
}
_BANNED = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in BANNED.items()}


def voice_problems(text: str) -> list[str]:
    return [name for name, pattern in _BANNED.items() if pattern.search(text)]


def client_texts(prompt: Prompt) -> Iterator[str]:
    """Every string of a prompt that a client reads: text, buttons, scale labels, steps."""
    for part in (prompt, *prompt.steps):
        yield part.text
        yield from part.choices
        if part.scale is not None:
            yield from (label for label in (part.scale.low_label, part.scale.high_label) if label)


def sends_within(step: Step, duration_days: int) -> int:
    """How many times a recurring step fires at most during a bounded enrolment."""
    weeks = math.ceil(duration_days / 7)
    if step.weekly:
        return len(step.weekly) * weeks
    if step.window is not None and step.days:
        return len(step.days) * weeks
    return duration_days


@pytest.fixture(scope="module")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def library(repo_root: Path) -> Library:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo_root)
        return load_library(Path("prompts"))


def _all_prompts(library: Library) -> list[Prompt]:
    return list(library.prompts.values())


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _prompt(key: str) -> dict[str, object]:
    return {"key": key, "kind": "integration", "response": "text", "text": "How was today?"}


def _program(key: str, steps: list[dict[str, object]]) -> dict[str, object]:
    return {"key": key, "title": "A program", "steps": steps}


def _problems(directory: Path) -> list[str]:
    with pytest.raises(LibraryError) as caught:
        load_library(directory)
    return caught.value.problems


# The shipped library


def test_shipped_library_loads_with_enough_prompts_and_programs(library: Library) -> None:
    """The library in prompts/ loads cleanly with at least 60 prompts and 5 programs."""
    assert len(library.prompts) >= 60
    assert len(library.programs) >= 5


def test_every_prompt_kind_is_represented(library: Library) -> None:
    """A therapist finds prompts of every kind, from integration to repair."""
    kinds = {prompt.kind for prompt in _all_prompts(library)}
    assert kinds == set(PromptKind)


def test_every_response_type_is_used(library: Library) -> None:
    """Clients meet every way of answering: words, voice, a scale, buttons, check-ins, steps."""
    used = {prompt.response for prompt in _all_prompts(library)}
    assert used == set(ResponseType)


def test_the_programs_a_practice_expects_are_there(library: Library) -> None:
    """The core programs a therapist enrols clients in are shipped under their documented keys."""
    expected = {
        "integration-7day",
        "preparation",
        "evening-checkin",
        "attachment-reflections",
        "experience-sampling",
        "parts-week",
    }
    assert expected <= set(library.programs)
    for program in library.programs.values():
        assert program.title.strip()
        assert program.description.strip(), f"{program.key} has no description for therapists"


def test_every_program_references_existing_prompts(library: Library) -> None:
    """No program step points at a prompt the library does not have."""
    for program in library.programs.values():
        for step in program.steps:
            for key in step.prompt_keys:
                assert key in library.prompts, f"{program.key} names missing prompt {key!r}"


def test_integration_week_covers_the_session_evening_and_seven_days(library: Library) -> None:
    """After a medicine session the client hears from us that evening and on each of days 1-7."""
    program = library.program("integration-7day")
    assert program.anchor == "medicine_session"
    days = {step.anchor_day for step in program.steps}
    assert days == set(range(8))
    kinds = {library.prompt(key).kind for step in program.steps for key in step.prompt_keys}
    assert PromptKind.CHECKIN in kinds


def test_preparation_arrives_before_the_session(library: Library) -> None:
    """Every preparation step is timed before the medicine session, never after it."""
    program = library.program("preparation")
    assert program.anchor == "medicine_session"
    for step in program.steps:
        offset = step.anchor_day if step.anchor_day is not None else step.anchor_hours
        assert offset is not None
        assert offset < 0
    assert any(step.anchor_hours is not None for step in program.steps)


def test_evening_checkin_is_open_ended(library: Library) -> None:
    """The evening check-in runs until the therapist ends it, drawing from several check-ins."""
    program = library.program("evening-checkin")
    assert program.duration_days is None
    (step,) = program.steps
    assert step.daily == "20:00"
    assert len(step.pool) >= 3
    assert all(library.prompt(key).response is ResponseType.CHECKIN for key in step.pool)


def test_random_moment_pools_only_hold_any_time_checkins(library: Library) -> None:
    """A random-time check-in never says 'good morning' in the evening: window pools are tagged random."""
    for program in library.programs.values():
        for step in program.steps:
            if step.window is None:
                continue
            for key in step.prompt_keys:
                prompt = library.prompt(key)
                assert prompt.response is ResponseType.CHECKIN, key
                assert "random" in prompt.tags, f"{program.key}: {key} is not tagged random"


def test_checkin_prompts_are_only_an_opening_line(library: Library) -> None:
    """Check-in texts are one short line, since the bot itself shows the state and 0-10 buttons."""
    checkins = [p for p in _all_prompts(library) if p.response is ResponseType.CHECKIN]
    assert len(checkins) >= 8
    for prompt in checkins:
        assert prompt.kind is PromptKind.CHECKIN
        assert len(prompt.text) <= 160, prompt.key
        assert "\n" not in prompt.text, prompt.key
        assert not re.search(r"\d", prompt.text), f"{prompt.key} asks for a number itself"


def test_repair_exercises_walk_through_every_step(library: Library) -> None:
    """At least two multi-step repair exercises ask how strong the feeling was on a 0-10 scale."""
    exercises = [
        p
        for p in _all_prompts(library)
        if p.kind is PromptKind.REPAIR
        and p.response is ResponseType.MULTI_STEP
        and any(step.response is ResponseType.SCALE for step in p.steps)
        and any("partner" in step.text for step in p.steps)
        and any("next time" in step.text for step in p.steps)
    ]
    assert len(exercises) >= 2
    for exercise in exercises:
        for step in exercise.steps:
            if step.response is ResponseType.SCALE:
                assert step.scale is not None
                assert (step.scale.min, step.scale.max) == (0, 10)


def test_scales_name_both_ends(library: Library) -> None:
    """Every scale a client sees says what its low and high ends mean."""
    for prompt in _all_prompts(library):
        for part in (prompt, *prompt.steps):
            if part.response is ResponseType.SCALE:
                assert part.scale is not None, prompt.key
                assert part.scale.low_label, prompt.key
                assert part.scale.high_label, prompt.key


# The voice


@pytest.mark.parametrize(
    "text",
    [
        "You are avoidant.",
        "you're so ANXIOUS about this",
        "Your partner is disorganized",
        "an anxious attachment style",
        "You should rest today.",
        "Patients often feel tired.",
        "This may be a symptom.",
        "Ask about your dose.",
    ],
)
def test_voice_check_catches_words_outside_the_voice(text: str) -> None:
    """The voice check flags labels, 'should', clinical words and medical advice in any case."""
    assert voice_problems(text)


@pytest.mark.parametrize(
    "text",
    [
        "Let your shoulders drop.",
        "A part of you learned to pull back when closeness felt like too much.",
        "Be gentle with the part of you that worries.",
    ],
)
def test_voice_check_respects_word_boundaries(text: str) -> None:
    """Ordinary words that merely contain a banned word ('shoulders') pass the voice check."""
    assert voice_problems(text) == []


def test_no_client_text_leaves_the_voice(library: Library) -> None:
    """No prompt, step, button, scale label or program title uses a word the voice rules out."""
    found = [
        f"{prompt.key}: {problem}: {text!r}"
        for prompt in _all_prompts(library)
        for text in client_texts(prompt)
        for problem in voice_problems(text)
    ]
    found += [
        f"{program.key}: {problem}: title"
        for program in library.programs.values()
        for problem in voice_problems(program.title)
    ]
    assert found == []


def test_every_text_fits_in_one_message(library: Library) -> None:
    """Every client-facing text is under 3500 characters, leaving room within Telegram's 4096."""
    for prompt in _all_prompts(library):
        for text in client_texts(prompt):
            assert 0 < len(text) < TEXT_LIMIT, prompt.key


def test_most_texts_are_short(library: Library) -> None:
    """The library stays brief: most prompt texts are under 300 characters."""
    texts = [prompt.text for prompt in _all_prompts(library)]
    short = [text for text in texts if len(text) < 300]
    assert len(short) >= 0.9 * len(texts)


def test_every_button_label_fits_on_a_phone(library: Library) -> None:
    """Every choice button, in a prompt or a step, is at most 40 characters."""
    for prompt in _all_prompts(library):
        for choices in (prompt.choices, *(step.choices for step in prompt.steps)):
            for label in choices:
                assert 0 < len(label) <= BUTTON_LIMIT, f"{prompt.key}: {label!r}"


# Pools


def test_pools_have_no_duplicate_keys(library: Library) -> None:
    """A pool never lists the same prompt twice, so draws without repeats stay varied."""
    for program in library.programs.values():
        for number, step in enumerate(program.steps, start=1):
            duplicates = {key for key in step.pool if step.pool.count(key) > 1}
            assert not duplicates, f"{program.key} step {number}: {sorted(duplicates)}"


def test_bounded_pools_last_the_whole_program(library: Library) -> None:
    """In a program with an end, a client never gets the same pooled prompt twice."""
    bounded: list[tuple[Program, Step]] = [
        (program, step)
        for program in library.programs.values()
        if program.duration_days is not None
        for step in program.steps
        if step.pool
    ]
    assert bounded
    for program, step in bounded:
        assert program.duration_days is not None
        needed = sends_within(step, program.duration_days)
        assert len(step.pool) >= needed, f"{program.key}: pool of {len(step.pool)} for {needed}"


# Mistakes a practice might make when editing, reported with the file


def test_missing_prompt_is_reported_with_file_and_key(tmp_path: Path) -> None:
    """A program naming a prompt that does not exist is reported with its file name and the key."""
    _write(tmp_path / "integration.yaml", {"prompts": [_prompt("integration.today")]})
    _write(
        tmp_path / "programs" / "broken-week.yaml",
        _program(
            "broken-week",
            [
                {"prompt": "integration.today", "daily": "19:00"},
                {"pool": ["integration.today", "integration.gone"], "daily": "20:00"},
            ],
        ),
    )
    problems = _problems(tmp_path)
    assert len(problems) == 1
    assert "broken-week.yaml" in problems[0]
    assert "'integration.gone'" in problems[0]
    assert "step 2" in problems[0]


def test_duplicate_prompt_key_is_reported(tmp_path: Path) -> None:
    """The same prompt key in two files is reported once, naming the file and the key."""
    _write(tmp_path / "a.yaml", {"prompts": [_prompt("checkin.twice")]})
    _write(tmp_path / "b.yaml", {"prompts": [_prompt("checkin.twice")]})
    problems = _problems(tmp_path)
    assert problems == ["b.yaml: prompt key 'checkin.twice' is used twice"]


def test_step_with_two_timings_is_reported(tmp_path: Path) -> None:
    """A step timed both daily and in a window is rejected, naming the file and the rule."""
    _write(tmp_path / "integration.yaml", {"prompts": [_prompt("integration.today")]})
    _write(
        tmp_path / "programs" / "two-timings.yaml",
        _program(
            "two-timings",
            [{"prompt": "integration.today", "daily": "19:00", "window": ["10:00", "20:00"]}],
        ),
    )
    problems = _problems(tmp_path)
    timing = [problem for problem in problems if "exactly one timing" in problem]
    assert len(timing) == 1
    assert timing[0].startswith("two-timings.yaml: two-timings: steps.0: ")
    assert "['daily', 'window']" in timing[0]
    assert all(problem.startswith("two-timings.yaml: ") for problem in problems)


def test_every_library_file_explains_how_to_edit_it(repo_root: Path) -> None:
    """Each YAML file opens with a comment telling a practice what it holds and how edits apply."""
    files = sorted((repo_root / "prompts").glob("*.yaml"))
    files += sorted((repo_root / "prompts" / "programs").glob("*.yaml"))
    assert files
    for path in files:
        if path.name == "safety.yaml":
            continue
        text = path.read_text(encoding="utf-8")
        header = text[: text.find("\n\n")]
        assert text.startswith("# "), path.name
        assert "already sent" in header, f"{path.name}: header does not say sent prompts keep text"


# Couple programs


def test_three_couple_programs_ship(library: Library) -> None:
    """Weekly appreciation, repair after conflict and a couples medicine session are there for couples."""
    couple_programs = {p.key for p in library.programs.values() if p.audience.value == "couple"}
    assert {"couple-weekly-appreciation", "couple-repair-practice",
            "couple-kap-integration"} <= couple_programs
    kap = library.programs["couple-kap-integration"]
    days = [step.anchor_day for step in kap.steps]
    assert any(day is not None and day < 0 for day in days)  # before the session
    assert any(day is not None and day > 0 for day in days)  # and after it
    assert any(step.complementary for step in library.programs["couple-weekly-appreciation"].steps)


def test_couple_programs_pair_no_check_ins(library: Library) -> None:
    """Every prompt a couple program sends can be read by a partner: words, buttons or steps."""
    for program in library.programs.values():
        if program.audience.value != "couple":
            continue
        for step in program.steps:
            for key in step.prompt_keys:
                assert library.prompts[key].response is not ResponseType.CHECKIN, key


def test_complementary_steps_are_for_couples_only(tmp_path: Path) -> None:
    """A client program with a complementary pair is reported, with its file."""
    _write(tmp_path / "couples.yaml", {"prompts": [_prompt("couple.one"), _prompt("couple.two")]})
    _write(tmp_path / "programs" / "solo.yaml", _program(
        "solo", [{"complementary": ["couple.one", "couple.two"], "daily": "19:00"}]))
    problems = _problems(tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith("solo.yaml: solo: ")
    assert "complementary" in problems[0]


def test_couple_program_problems_are_reported(tmp_path: Path) -> None:
    """A paired check-in, a missing complementary prompt, or a step naming two things are reported."""
    checkin = {"key": "checkin.now", "kind": "checkin", "response": "checkin", "text": "Where are you?"}
    _write(tmp_path / "couples.yaml", {"prompts": [_prompt("couple.one"), checkin]})
    _write(tmp_path / "programs" / "pair.yaml", {**_program("pair", [
        {"prompt": "checkin.now", "daily": "19:00"},
        {"complementary": ["couple.one", "couple.gone"], "daily": "20:00"},
    ]), "audience": "couple"})
    _write(tmp_path / "programs" / "both.yaml", {**_program("both", [
        {"prompt": "couple.one", "complementary": ["couple.one", "couple.one"], "daily": "19:00"},
    ]), "audience": "couple"})
    problems = _problems(tmp_path)
    assert any(p.startswith("pair.yaml: pair: step 1: 'checkin.now' is a check-in") for p in problems)
    assert any(p.startswith("pair.yaml: pair: step 2: no prompt 'couple.gone'") for p in problems)
    assert any(p.startswith("both.yaml: both: steps.0: ") and "complementary pair" in p
               for p in problems)


def test_prompts_check_command_names_couple_program_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`interlude prompts check --json` fails and lists a couple program's problem with its file."""
    from bot.cli import main

    _write(tmp_path / "couples.yaml", {"prompts": [_prompt("couple.one")]})
    _write(tmp_path / "programs" / "pair.yaml", {**_program("pair", [
        {"complementary": ["couple.one", "couple.gone"], "weekly": ["sun"], "at": "19:00"},
    ]), "audience": "couple"})
    monkeypatch.setenv("INTERLUDE_PROMPTS_DIR", str(tmp_path))
    monkeypatch.setenv("INTERLUDE_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exit_code:
        main(["prompts", "check", "--json"])
    assert exit_code.value.code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["problems"] == ["pair.yaml: pair: step 1: no prompt 'couple.gone'"]



def test_broken_yaml_is_reported_with_file_and_line(tmp_path: Path) -> None:
    """A file a practice broke while editing (an unclosed quote) is named, with the line to
    look at, and the other files still load their prompts."""
    _write(tmp_path / "integration.yaml", {"prompts": [_prompt("integration.today")]})
    (tmp_path / "checkins.yaml").write_text(
        'prompts:\n  - key: checkin.morning\n    text: "How are you arriving\n', encoding="utf-8")
    [problem] = _problems(tmp_path)
    assert problem.startswith("checkins.yaml: not valid YAML")
    assert "line 3" in problem
