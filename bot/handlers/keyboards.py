"""How prompts and questions look in Telegram: text, inline keyboards and callback data.

Callback data stays under Telegram's 64 bytes and names only ids; the services check that the
delivery belongs to the person who pressed, so forged data cannot answer someone else's prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import messages
from bot.db.models import NervousSystemState
from bot.library.schema import ResponseType
from bot.messages import render

STATE_LABELS = {
    NervousSystemState.GROUNDED: messages.CHECKIN_GROUNDED,
    NervousSystemState.ACTIVATED: messages.CHECKIN_ACTIVATED,
    NervousSystemState.SHUT_DOWN: messages.CHECKIN_SHUT_DOWN,
}


@dataclass(frozen=True)
class Rendered:
    text: str
    keyboard: InlineKeyboardMarkup | None


def _rows(buttons: list[InlineKeyboardButton], width: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([buttons[i:i + width] for i in range(0, len(buttons), width)])


def answer_keyboard(delivery_id: int, question: int, spec: dict[str, Any],
                    language: str | None) -> InlineKeyboardMarkup | None:
    response = spec.get("response")
    if response == ResponseType.CHOICE:
        return _rows([InlineKeyboardButton(label, callback_data=f"ans:{delivery_id}:{question}:{i}")
                      for i, label in enumerate(spec.get("choices") or [])], 1)
    if response == ResponseType.SCALE:
        scale = spec.get("scale") or {"min": 0, "max": 10}
        numbers = range(scale["min"], scale["max"] + 1)
        return _rows([InlineKeyboardButton(str(n), callback_data=f"ans:{delivery_id}:{question}:{n}")
                      for n in numbers], 6)
    if response == ResponseType.CHECKIN:
        return state_keyboard(delivery_id, language)
    return None


def _scale_hint(spec: dict[str, Any]) -> str:
    scale = spec.get("scale") or {}
    if spec.get("response") != ResponseType.SCALE or not (scale.get("low_label")
                                                         and scale.get("high_label")):
        return ""
    return f"\n\n{scale['min']} = {scale['low_label']} · {scale['max']} = {scale['high_label']}"


def prompt_message(delivery_id: int, prompt: dict[str, Any], language: str | None) -> Rendered:
    """The first message of a prompt, as the client sees it."""
    if prompt.get("notice"):
        return Rendered(prompt["text"], buttons(*[[(label, data) for label, data in row]
                                                  for row in prompt["buttons"]])
                        if prompt.get("buttons") else None)
    if prompt.get("response") == ResponseType.MULTI_STEP:
        first = question_message(delivery_id, prompt, 0, language)
        return Rendered(f"{prompt['text']}\n\n{first.text}", first.keyboard)
    if prompt.get("response") == ResponseType.QUESTIONNAIRE:
        return questionnaire_message(delivery_id, prompt, 0, (), language, opening=True)
    return Rendered(prompt["text"] + _scale_hint(prompt),
                    answer_keyboard(delivery_id, 0, prompt, language))


def question_message(delivery_id: int, prompt: dict[str, Any], index: int,
                     language: str | None) -> Rendered:
    """Question `index` of a multi-step prompt, with its place in the sequence."""
    steps = prompt["steps"]
    spec = steps[index]
    marker = render(messages.STEP_MARKER, language, number=index + 1, total=len(steps))
    keyboard = answer_keyboard(delivery_id, index, spec, language)
    if prompt.get("pair"):
        # A paired exercise offers a pause and a grounding moment before every step.
        rows = list(keyboard.inline_keyboard) if keyboard else []
        rows.append((InlineKeyboardButton(render(messages.REPAIR_PAUSE, language),
                                          callback_data=f"rs:{delivery_id}:p"),
                     InlineKeyboardButton(render(messages.REPAIR_GROUNDING, language),
                                          callback_data=f"rs:{delivery_id}:g")))
        keyboard = InlineKeyboardMarkup(rows)
    return Rendered(f"{marker} {spec['text']}{_scale_hint(spec)}", keyboard)


def questionnaire_message(delivery_id: int, prompt: dict[str, Any], item: int,
                          values: tuple[int | None, ...], language: str | None, *,
                          opening: bool = False) -> Rendered:
    """Item `item` of a questionnaire with its answers as buttons (the one given, if any, ticked)
    and a way back one item; `opening` adds the introduction and what the therapist is told."""
    spec = prompt["questionnaire"]
    items = spec["items"]
    marker = render(messages.QUESTIONNAIRE_MARKER, language, title=spec["title"],
                    number=item + 1, total=len(items))
    parts = [f"{marker}\n{spec['stem']}\n\n{items[item]['text']}"]
    if opening:
        lowest = spec["options"][0]["label"]
        notes = [render(messages.QUESTIONNAIRE_ALERT_NOTE, language, number=alert["item"],
                        item=items[alert["item"] - 1]["text"], none=lowest)
                 for alert in spec.get("alerts") or ()]
        parts = [prompt["text"], *notes, *parts]
    given = values[item] if item < len(values) else None
    rows = [[InlineKeyboardButton(("✓ " if option["value"] == given else "") + option["label"],
                                  callback_data=f"qn:{delivery_id}:{item}:{option['value']}")]
            for option in spec["options"]]
    if item > 0:
        rows.append([InlineKeyboardButton(render(messages.QUESTIONNAIRE_BACK, language),
                                          callback_data=f"qn:{delivery_id}:{item}:b")])
    return Rendered("\n\n".join(parts), InlineKeyboardMarkup(rows))


def state_keyboard(delivery_id: int, language: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(render(label, language), callback_data=f"ci:{delivery_id}:s:{state}")
        for state, label in STATE_LABELS.items()
    ]])


def intensity_keyboard(delivery_id: int) -> InlineKeyboardMarkup:
    return _rows([InlineKeyboardButton(str(n), callback_data=f"ci:{delivery_id}:i:{n}")
                  for n in range(11)], 6)


def consent_message(text: str, language: str | None, *, token: str | None = None) -> Rendered:
    """Consent with its two buttons: for an invite (the token rides in the button) or a renewal."""
    yes, no = (f"consent:y:{token}", "consent:n") if token else ("consent:renew", "consent:later")
    return Rendered(text, buttons([(render(messages.CONSENT_YES, language), yes),
                                   (render(messages.CONSENT_NOT_NOW, language), no)]))


def buttons(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    """A keyboard from rows of (label, callback data)."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)
                                  for label, data in row] for row in rows])


def parse_ints(parts: list[str]) -> list[int] | None:
    try:
        return [int(part) for part in parts]
    except ValueError:
        return None
