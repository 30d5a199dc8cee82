"""Loads prompts/ into a validated, immutable Library; `interlude prompts check` runs it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from bot.library.schema import Audience, Program, Prompt, ResponseType
from bot.yamlfile import read_yaml


class LibraryError(Exception):
    """The library has problems; ``problems`` lists each one with its file."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the prompt library")
        self.problems = problems


@dataclass(frozen=True)
class Library:
    prompts: dict[str, Prompt]
    programs: dict[str, Program]
    source: Path | None = field(default=None, compare=False)

    def prompt(self, key: str) -> Prompt:
        try:
            return self.prompts[key]
        except KeyError:
            raise LibraryError([f"no prompt with key {key!r}"]) from None

    def program(self, key: str) -> Program:
        try:
            return self.programs[key]
        except KeyError:
            raise LibraryError([f"no program with key {key!r}"]) from None


def load_library(directory: Path) -> Library:
    """Read every prompts/*.yaml (prompts) and prompts/programs/*.yaml (programs)."""
    problems: list[str] = []
    prompts: dict[str, Prompt] = {}
    programs: dict[str, Program] = {}
    if not directory.is_dir():
        raise LibraryError([f"{directory}: no such folder"])

    for path, item in _documents(sorted(directory.glob("*.yaml")), "prompts", problems):
        if path.name == "safety.yaml":
            continue
        try:
            prompt = Prompt.model_validate(item)
        except ValidationError as error:
            problems.extend(_describe(path, item, error))
            continue
        if prompt.key in prompts:
            problems.append(f"{path.name}: prompt key {prompt.key!r} is used twice")
        prompts[prompt.key] = prompt

    for path, item in _documents(sorted((directory / "programs").glob("*.yaml")), None, problems):
        try:
            program = Program.model_validate(item)
        except ValidationError as error:
            problems.extend(_describe(path, item, error))
            continue
        if program.key in programs:
            problems.append(f"{path.name}: program key {program.key!r} is used twice")
        programs[program.key] = program
        problems.extend(_check_references(path, program, prompts))

    if problems:
        raise LibraryError(problems)
    return Library(prompts=prompts, programs=programs, source=directory)


def _documents(
    paths: Iterable[Path], list_key: str | None, problems: list[str]
) -> Iterable[tuple[Path, object]]:
    """Yield (file, item): each entry of a file's `list_key` list, or the whole file."""
    for path in paths:
        if path.name == "safety.yaml":
            continue
        try:
            data = read_yaml(path)
        except yaml.YAMLError as error:
            problems.append(f"{path.name}: not valid YAML ({error})")
            continue
        if list_key is None:
            yield path, data
            continue
        items = data.get(list_key) if isinstance(data, dict) else None
        if not isinstance(items, list):
            problems.append(f"{path.name}: expected a top-level '{list_key}:' list")
            continue
        for item in items:
            yield path, item


def _describe(path: Path, item: object, error: ValidationError) -> list[str]:
    key = item.get("key", "?") if isinstance(item, dict) else "?"
    return [
        f"{path.name}: {key}: {'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}"
        for e in error.errors()
    ]


def _check_references(path: Path, program: Program, prompts: dict[str, Prompt]) -> list[str]:
    problems = []
    for number, step in enumerate(program.steps, start=1):
        for key in step.prompt_keys:
            prompt = prompts.get(key)
            if prompt is None:
                problems.append(f"{path.name}: {program.key}: step {number}: no prompt {key!r}")
            elif program.audience is Audience.COUPLE and prompt.response is ResponseType.CHECKIN:
                # A paired answer is revealed as words; a check-in's state buttons are not one.
                problems.append(f"{path.name}: {program.key}: step {number}: {key!r} is a "
                                "check-in, which couple programs cannot pair")
    return problems
