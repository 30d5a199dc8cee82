"""Validate FHIR JSON against the R4 (4.0.1) models of fhir.resources, in a process of its own.

fhir.resources 6.4.0 is the last release whose models are R4 (4.0.1): 6.5.0 moved to R4B and
7 to R5. It is written for pydantic 1, which pydantic 2 carries whole as `pydantic.v1`; this
process maps `pydantic` to it before loading the models, which is why it runs apart from the
tests (and the bot), which use pydantic 2.

Usage: python -m tests.fhir_r4 < bundle.json; prints one JSON line: the FHIR version of the
models, each entry's resource type, and the problems (empty when valid).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import json
import sys
from types import ModuleType
from typing import Any


class _PydanticOne(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of `pydantic` and `pydantic.x` answered by `pydantic.v1` and `pydantic.v1.x`."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if (name == "pydantic" or name.startswith("pydantic.")) and not name.startswith("pydantic.v1"):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec: Any) -> ModuleType:
        return importlib.import_module("pydantic.v1" + spec.name[len("pydantic"):])

    def exec_module(self, module: ModuleType) -> None:
        return None


def main() -> None:
    importlib.import_module("pydantic.v1")
    for name in [n for n in sys.modules if n == "pydantic" or (
            n.startswith("pydantic.") and not n.startswith("pydantic.v1"))]:
        del sys.modules[name]
    sys.meta_path.insert(0, _PydanticOne())
    fhir = importlib.import_module("fhir.resources")
    bundle_module = importlib.import_module("fhir.resources.bundle")
    data = json.load(sys.stdin)
    problems: list[str] = []
    types: list[str] = []
    try:
        bundle = bundle_module.Bundle.parse_obj(data)
        types = [entry.resource.resource_type for entry in bundle.entry or []]
    except Exception as error:  # the library's ValidationError names each wrong field
        problems.append(str(error))
    print(json.dumps({"fhir_version": fhir.__fhir_version__, "types": types,
                      "problems": problems}))


if __name__ == "__main__":
    main()
