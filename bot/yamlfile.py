"""Reading the YAML files a practice edits (the prompt library, the safety rules, the examples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# libyaml's parser, which PyYAML's wheels include, reads the same documents several times faster
# than the pure-Python one: the crisis examples alone took seconds at each training.
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """The file's document (plain data only, as yaml.safe_load gives); raises yaml.YAMLError."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
