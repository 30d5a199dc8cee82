"""Scoring PHQ-9 and GAD-7: the total and band at every band edge, and `prompts check`
refusing a scoring definition that does not add up."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.library import Library, LibraryError, load_library
from bot.library.schema import Questionnaire
from bot.services.questionnaires import score
from tests.conftest import ROOT

# (total, band) at both edges of every band, from the published scoring.
PHQ9_EDGES = [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
              (14, "moderate"), (15, "moderately severe"), (19, "moderately severe"),
              (20, "severe"), (27, "severe")]
GAD7_EDGES = [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
              (14, "moderate"), (15, "severe"), (21, "severe")]


def answers_summing_to(total: int, items: int) -> list[int]:
    """Item values 0-3 that add up to `total`, filled from the first item."""
    values = []
    for _ in range(items):
        value = min(3, total)
        values.append(value)
        total -= value
    assert total == 0
    return values


def _questionnaire(library: Library, key: str) -> Questionnaire:
    found = library.prompts[key].questionnaire
    assert found is not None
    return found


@pytest.mark.parametrize(("total", "band"), PHQ9_EDGES)
def test_phq9_band_edges(library: Library, total: int, band: str) -> None:
    """PHQ-9 totals 0-27 fall in minimal, mild, moderate, moderately severe, severe at 5/10/15/20."""
    phq9 = _questionnaire(library, "questionnaire.phq-9")
    assert score(phq9, answers_summing_to(total, 9)) == (total, band)


@pytest.mark.parametrize(("total", "band"), GAD7_EDGES)
def test_gad7_band_edges(library: Library, total: int, band: str) -> None:
    """GAD-7 totals 0-21 fall in minimal, mild, moderate, severe at 5/10/15."""
    gad7 = _questionnaire(library, "questionnaire.gad-7")
    assert score(gad7, answers_summing_to(total, 7)) == (total, band)


def test_every_total_has_exactly_one_band(library: Library) -> None:
    """Each possible total of both questionnaires lands in one band, the bands in order."""
    for key, highest in (("questionnaire.phq-9", 27), ("questionnaire.gad-7", 21)):
        questionnaire = _questionnaire(library, key)
        assert (questionnaire.lowest, questionnaire.highest) == (0, highest)
        labels = [questionnaire.band(total) for total in range(highest + 1)]
        assert [b.label for b in questionnaire.scoring.bands] == list(dict.fromkeys(labels))


def test_a_partial_or_foreign_answer_has_no_score(library: Library) -> None:
    """Eight of nine answers, or a value no option has, is refused rather than scored low."""
    phq9 = _questionnaire(library, "questionnaire.phq-9")
    with pytest.raises(ValueError, match="every item"):
        score(phq9, [1] * 8 + [None])
    with pytest.raises(ValueError, match="options"):
        score(phq9, [1] * 8 + [4])


def test_the_instruments_carry_their_attribution_and_loinc_codes(library: Library) -> None:
    """Both name their authors and Pfizer's grant, and code the totals with LOINC."""
    phq9 = _questionnaire(library, "questionnaire.phq-9")
    gad7 = _questionnaire(library, "questionnaire.gad-7")
    for questionnaire in (phq9, gad7):
        assert "Spitzer" in questionnaire.attribution
        assert "Kroenke" in questionnaire.attribution
        assert "Williams" in questionnaire.attribution
        assert "Pfizer" in questionnaire.attribution
        assert [o.label for o in questionnaire.options] == [
            "Not at all", "Several days", "More than half the days", "Nearly every day"]
    assert (phq9.scoring.total_code, gad7.scoring.total_code) == ("44261-6", "70274-6")
    assert phq9.items[8].text.startswith("Thoughts that you would be better off dead")
    assert [(a.item, a.at_least) for a in phq9.alerts] == [(9, 1)]
    assert gad7.alerts == ()


def _library_with(tmp_path: Path, change: dict[str, object]) -> None:
    """A copy of the shipped PHQ-9 with its scoring changed, loaded on its own."""
    shipped = yaml.safe_load((ROOT / "prompts" / "measures.yaml").read_text())
    prompt = shipped["prompts"][0]
    prompt["questionnaire"] = {**prompt["questionnaire"], **change}
    (tmp_path / "programs").mkdir()
    (tmp_path / "measures.yaml").write_text(yaml.safe_dump({"prompts": [prompt]}))
    load_library(tmp_path)


def _bands(*spans: tuple[int, int]) -> dict[str, object]:
    return {"scoring": {"method": "sum", "bands": [
        {"min": low, "max": high, "label": f"band {n}"} for n, (low, high) in enumerate(spans)]}}


@pytest.mark.parametrize(("change", "problem"), [
    (_bands((0, 4), (6, 27)), "leave a gap or overlap"),
    (_bands((0, 5), (5, 27)), "leave a gap or overlap"),
    (_bands((1, 27)), "lowest possible total is 0"),
    (_bands((0, 20)), "highest possible total is 27"),
    ({"alerts": [{"item": 10, "at_least": 1}]}, "there are 9 items"),
    ({"alerts": [{"item": 9, "at_least": 4}]}, "which no answer has"),
    ({"options": [{"value": 0, "label": "No"}, {"value": 0, "label": "Yes"}]}, "same value"),
    ({"options": [{"value": 1, "label": "No"}, {"value": 0, "label": "Yes"}]}, "lowest value"),
])
def test_prompts_check_refuses_scoring_that_does_not_add_up(
        tmp_path: Path, change: dict[str, object], problem: str) -> None:
    """Bands with a gap, an overlap or a short range, an alert on a missing item or an
    unreachable value, and options out of order are each named as a problem of the file."""
    with pytest.raises(LibraryError) as raised:
        _library_with(tmp_path, change)
    assert any(problem in p and p.startswith("measures.yaml: questionnaire.phq-9")
               for p in raised.value.problems), raised.value.problems
