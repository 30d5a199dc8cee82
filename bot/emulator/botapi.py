"""The Bot API spec (spec/api.json) as checks: which requests Telegram would accept, and
whether an object carries every field Telegram promises.

The emulator checks every request against it before doing anything, and tests use
`missing_fields` / `check_result` to prove that what the emulator answers has the
shape python-telegram-bot and the real API agree on. The spec is indexed once into
small parser functions, so a request costs a few dictionary look-ups.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).parent / "spec" / "api.json"

# Parameters Telegram still accepts although the current documentation no longer lists
# them, and older clients still send (reply_to_message_id above all). Each entry: a
# parameter of today's spec, and the older ones it replaced, with their types.
LEGACY_PARAMETERS: tuple[tuple[str, dict[str, str]], ...] = (
    (
        "reply_parameters",
        {"reply_to_message_id": "Integer", "allow_sending_without_reply": "Boolean"},
    ),
    ("link_preview_options", {"disable_web_page_preview": "Boolean"}),
)

# Telegram's own wording for a few missing parameters; the rest get a generic one.
MISSING_PARAMETER_WORDING = {
    "chat_id": "Bad Request: chat_id is empty",
    "text": "Bad Request: message text is empty",
    "callback_query_id": "Bad Request: query_id is empty",
    "file_id": "Bad Request: file_id not specified",
    "url": "Bad Request: url is empty",
}

_INTEGER = re.compile(r"-?\d+")
_TRUE = frozenset({"true", "True", "1"})
_FALSE = frozenset({"false", "False", "0"})


class ApiError(Exception):
    """A refusal in Telegram's own shape: HTTP status, description, maybe retry_after."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass(frozen=True)
class UploadedFile:
    """A file sent in a multipart request: the spec's InputFile."""

    filename: str
    content_type: str
    content: bytes


class _Mismatch(Exception):
    """A value does not fit the type the spec asks for; the message says where and why."""


Parser = Callable[[Any, bool], Any]  # (value, top_level) -> checked value


@dataclass(frozen=True)
class MethodSpec:
    name: str
    parameters: dict[str, tuple[str, Parser]]  # name -> (type as the spec writes it, parser)
    required: tuple[str, ...]
    returns: tuple[str, ...]


class BotApiSpec:
    """The spec indexed for fast checks. Build it once (see `load_spec`)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.version: str = raw.get("version", "")
        self._types: dict[str, Mapping[str, Any]] = dict(raw["types"])
        self._parsers: dict[str, Parser] = {}
        self.methods: dict[str, MethodSpec] = {}
        self._by_lower_name: dict[str, str] = {}
        for name, method in raw["methods"].items():
            fields = method.get("fields", [])
            parameters = {
                field["name"]: (" or ".join(field["types"]), self._union(field["types"])) for field in fields
            }
            for successor, legacy in LEGACY_PARAMETERS:
                if successor in parameters:
                    for legacy_name, legacy_type in legacy.items():
                        parameters[legacy_name] = (legacy_type, self._union([legacy_type]))
            required = tuple(field["name"] for field in fields if field["required"])
            returns = tuple(method.get("returns", []))
            self.methods[name] = MethodSpec(name, parameters, required, returns)
            # Telegram matches method names without regard to case.
            self._by_lower_name[name.lower()] = name

    # -- requests ---------------------------------------------------------

    def method_name(self, name: str) -> str | None:
        """The spec's spelling of a method, or None if Telegram has no such method."""
        return self._by_lower_name.get(name.lower())

    def parse_parameters(self, method: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Check a request's parameters and give them back as Python values.

        Accepts both encodings python-telegram-bot and other clients use: form
        values where everything but a string is JSON-encoded, and native JSON
        values. Raises ApiError(400) naming the first problem.
        """
        spec = self.methods[method]
        parsed: dict[str, Any] = {}
        for name, value in raw.items():
            entry = spec.parameters.get(name)
            if entry is None:
                raise bad_request(
                    f"unknown parameter {name!r} for method {method} "
                    "(the emulator checks every parameter against the Bot API spec)"
                )
            if value is None:
                continue
            declared, parser = entry
            try:
                parsed[name] = parser(value, True)
            except _Mismatch as problem:
                raise bad_request(f"parameter {name!r} of {method} must be {declared}: {problem}") from None
        for name in spec.required:
            if name not in parsed:
                raise ApiError(
                    400,
                    MISSING_PARAMETER_WORDING.get(
                        name, f"Bad Request: parameter {name!r} is required for {method}"
                    ),
                )
        return parsed

    # -- answers ----------------------------------------------------------

    def missing_fields(self, type_expr: str, value: Any, path: str = "") -> list[str]:
        """Every required field absent from `value` (and every value of the wrong type),
        walking nested objects, as "path: problem" strings. Empty means it fits."""
        problems: list[str] = []
        self._walk(type_expr, value, path or type_expr, problems)
        return problems

    def check_result(self, method: str, result: Any) -> list[str]:
        """Problems with `result` as the answer to `method`; empty if any declared return type fits."""
        returns = self.methods[method].returns
        best: list[str] | None = None
        for type_expr in returns:
            problems = self.missing_fields(type_expr, result, f"{method}()")
            if not problems:
                return []
            if best is None or len(problems) < len(best):
                best = problems
        return best or []

    def _walk(self, type_expr: str, value: Any, path: str, problems: list[str]) -> None:
        if type_expr.startswith("Array of "):
            if not isinstance(value, list):
                problems.append(f"{path}: expected {type_expr}")
                return
            inner = type_expr[len("Array of ") :]
            for index, item in enumerate(value):
                self._walk(inner, item, f"{path}[{index}]", problems)
            return
        primitive = _PRIMITIVE_CHECKS.get(type_expr)
        if primitive is not None:
            if not primitive(value):
                problems.append(f"{path}: expected {type_expr}, got {value!r}")
            return
        spec = self._types.get(type_expr)
        if spec is None:
            return  # InputFile and the like: nothing to check in an answer
        if not isinstance(value, dict):
            problems.append(f"{path}: expected {type_expr} object")
            return
        subtypes = spec.get("subtypes")
        if subtypes:
            attempts: list[list[str]] = []
            for subtype in subtypes:
                found: list[str] = []
                self._walk(subtype, value, path, found)
                if not found:
                    return
                attempts.append(found)
            problems.extend(_fewest(attempts))
            return
        for field in spec.get("fields", []):
            name = field["name"]
            if name not in value:
                if field["required"]:
                    problems.append(f"{path}.{name}: required by {type_expr}, missing")
                continue
            field_problems: list[list[str]] = []
            for option in field["types"]:
                found = []
                self._walk(option, value[name], f"{path}.{name}", found)
                if not found:
                    break
                field_problems.append(found)
            else:
                problems.extend(_fewest(field_problems))

    # -- building parsers ---------------------------------------------------

    def _union(self, options: list[str]) -> Parser:
        parsers = [self._parser(option) for option in options]
        if len(parsers) == 1:
            return parsers[0]

        def parse_union(value: Any, top: bool) -> Any:
            problems = []
            for parser in parsers:
                try:
                    return parser(value, top)
                except _Mismatch as problem:
                    problems.append(str(problem))
            raise _Mismatch("; ".join(dict.fromkeys(problems)))

        return parse_union

    def _parser(self, type_expr: str) -> Parser:
        parser = self._parsers.get(type_expr)
        if parser is None:
            parser = self._build(type_expr)
            self._parsers[type_expr] = parser
        return parser

    def _build(self, type_expr: str) -> Parser:
        if type_expr.startswith("Array of "):
            return self._array_parser(type_expr[len("Array of ") :])
        primitive = _PRIMITIVE_PARSERS.get(type_expr)
        if primitive is not None:
            return primitive
        if type_expr == "InputFile":
            return _parse_input_file
        spec = self._types.get(type_expr)
        if spec is None:
            raise KeyError(f"the spec uses an unknown type {type_expr!r}")
        return self._object_parser(type_expr, spec)

    def _array_parser(self, item_type: str) -> Parser:
        def parse_array(value: Any, top: bool) -> Any:
            if top and isinstance(value, str):
                value = _decode_json(value)
            if not isinstance(value, list):
                raise _Mismatch("expected an array")
            # Parsers are looked up late so that types may refer to each other.
            item = self._parser(item_type)
            checked = []
            for index, element in enumerate(value):
                try:
                    checked.append(item(element, False))
                except _Mismatch as problem:
                    raise _Mismatch(f"[{index}] {problem}") from None
            return checked

        return parse_array

    def _object_parser(self, type_name: str, spec: Mapping[str, Any]) -> Parser:
        subtypes: list[str] = spec.get("subtypes") or []
        raw_fields = spec.get("fields", [])
        # Field parsers are built on first use: types refer to each other in cycles
        # (a Message holds the Message it replies to).
        fields: list[tuple[str, bool, str, Parser]] = []

        def parse_object(value: Any, top: bool) -> Any:
            if top and isinstance(value, str):
                value = _decode_json(value)
            if not isinstance(value, dict):
                raise _Mismatch(f"expected a {type_name} object")
            if subtypes:
                # A union such as BotCommandScope: pragmatic, the first subtype that fits.
                problems = []
                for subtype in subtypes:
                    try:
                        return self._parser(subtype)(value, False)
                    except _Mismatch as problem:
                        problems.append(f"as {subtype}: {problem}")
                raise _Mismatch(f"fits none of {type_name}'s kinds ({'; '.join(problems)})")
            if raw_fields and not fields:
                fields.extend(
                    (f["name"], f["required"], " or ".join(f["types"]), self._union(f["types"]))
                    for f in raw_fields
                )
            for name, required, declared, parser in fields:
                if name not in value:
                    if required:
                        raise _Mismatch(f"{type_name} needs field {name!r}")
                    continue
                try:
                    parser(value[name], False)
                except _Mismatch as problem:
                    raise _Mismatch(f"field {name!r} must be {declared} ({problem})") from None
            return value

        return parse_object


def _fewest(attempts: list[list[str]]) -> list[str]:
    """The attempt with the fewest problems: the closest fit among a union's options."""
    return min(attempts, key=lambda found: len(found))


def _decode_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        # The same words for every option of a union, so the message says it once.
        raise _Mismatch("got text that is not JSON") from None


def _parse_integer(value: Any, top: bool) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if top and isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    raise _Mismatch(f"expected an integer, got {_describe(value)}")


def _parse_float(value: Any, top: bool) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if top and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _Mismatch(f"expected a number, got {_describe(value)}")


def _parse_boolean(value: Any, top: bool) -> bool:
    if isinstance(value, bool):
        return value
    if top and isinstance(value, str):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    raise _Mismatch(f"expected true or false, got {_describe(value)}")


def _parse_string(value: Any, top: bool) -> str:
    if isinstance(value, str):
        return value
    # A JSON body may carry a number where a string is due; Telegram takes it.
    if top and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Mismatch(f"expected a string, got {_describe(value)}")


def _parse_input_file(value: Any, top: bool) -> Any:
    if isinstance(value, UploadedFile):
        return value
    if isinstance(value, str) and value.startswith("attach://"):
        return value
    raise _Mismatch("expected an uploaded file")


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return "text" if len(value) > 20 else repr(value)
    return type(value).__name__


_PRIMITIVE_PARSERS: dict[str, Parser] = {
    "Integer": _parse_integer,
    "Float": _parse_float,
    "Boolean": _parse_boolean,
    "True": _parse_boolean,
    "String": _parse_string,
}

_PRIMITIVE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "Integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "Float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "Boolean": lambda v: isinstance(v, bool),
    "True": lambda v: v is True,
    "String": lambda v: isinstance(v, str),
}


@functools.cache
def load_spec(path: Path = SPEC_PATH) -> BotApiSpec:
    """The spec shipped with the emulator, read and indexed once per process."""
    with path.open(encoding="utf-8") as source:
        return BotApiSpec(json.load(source))
