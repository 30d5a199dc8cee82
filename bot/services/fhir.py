"""A client's questionnaires as a FHIR R4 (4.0.1) Bundle, for an electronic health record.

Each questionnaire begun becomes a QuestionnaireResponse (completed, or stopped when it closed
half-done); each total becomes an Observation coded with LOINC (PHQ-9 total 44261-6, GAD-7
total 70274-6), its band as the interpretation, derived from the response. The client is a
Patient entry the others refer to. Ids are stable UUIDs, so exporting twice gives the same
resources and a receiving system can tell a repeat from a new one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bot.db.models import Client
from bot.services.questionnaires import Result

LOINC = "http://loinc.org"
FHIR_VERSION = "4.0.1"
NAMESPACE = uuid.UUID("6f1f3c2e-8f8e-4d8a-9b7a-2f3e1d0c4b5a")  # Interlude's own, for uuid5


def _uuid(kind: str, number: int) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{kind}:{number}')}"


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _canonical(result: Result) -> str:
    code = result.questionnaire.code
    return f"{LOINC}/q/{code}" if code else f"urn:interlude:questionnaire:{result.key}"


def questionnaire_response(result: Result, patient: str) -> dict[str, Any]:
    questionnaire = result.questionnaire
    items = []
    for number, item in enumerate(questionnaire.items):
        value = result.values[number] if number < len(result.values) else None
        if value is None:
            continue
        option = next(o for o in questionnaire.options if o.value == value)
        coding: dict[str, Any] = {"display": option.label}
        if option.code:
            coding.update(system=LOINC, code=option.code)
        else:
            coding.update(system=f"urn:interlude:questionnaire:{result.key}:options",
                          code=str(option.value))
        entry: dict[str, Any] = {"linkId": str(number + 1), "text": item.text,
                                 "answer": [{"valueCoding": coding}]}
        if item.code:
            entry["definition"] = f"{LOINC}/{item.code}"
        items.append(entry)
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "identifier": {"system": "urn:interlude:questionnaire-response", "value": str(result.id)},
        "questionnaire": _canonical(result),
        "status": "completed" if result.complete else "stopped",
        "subject": {"reference": patient},
        "authored": _instant(result.at),
    }
    if items:
        resource["item"] = items
    return resource


def total_observation(result: Result, patient: str, response: str) -> dict[str, Any]:
    questionnaire = result.questionnaire
    display = f"{questionnaire.title} total score"
    code: dict[str, Any] = {"text": display}
    if questionnaire.scoring.total_code:
        code["coding"] = [{"system": LOINC, "code": questionnaire.scoring.total_code,
                           "display": display}]
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey", "display": "Survey"}]}],
        "code": code,
        "subject": {"reference": patient},
        "effectiveDateTime": _instant(result.at),
        "valueInteger": result.total,
        "interpretation": [{"text": result.band}],
        "derivedFrom": [{"reference": response}],
        "note": [{"text": f"{questionnaire.name}: range {questionnaire.lowest}-"
                          f"{questionnaire.highest}."}],
    }


def bundle(client: Client, found: list[Result], now: datetime) -> dict[str, Any]:
    """A `collection` Bundle: the Patient, then each response and its total, oldest first."""
    patient = _uuid("client", client.id)
    entries: list[dict[str, Any]] = [{"fullUrl": patient, "resource": {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:interlude:client", "value": str(client.id)}],
        "name": [{"text": client.display_name}],
    }}]
    for result in found:
        response = _uuid("questionnaire-response", result.id)
        entries.append({"fullUrl": response,
                        "resource": questionnaire_response(result, patient)})
        if result.complete and result.total is not None:
            entries.append({"fullUrl": _uuid("questionnaire-total", result.id),
                            "resource": total_observation(result, patient, response)})
    return {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": _instant(now)},
        "identifier": {"system": "urn:interlude:export", "value": f"client-{client.id}"},
        "type": "collection",
        "timestamp": _instant(now),
        "entry": entries,
    }
