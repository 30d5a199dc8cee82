"""The prompt library and programs a practice edits as YAML in prompts/ (outbound, first step)."""

from bot.library.loader import Library, LibraryError, load_library
from bot.library.schema import Program, Prompt, ResponseType, Step

__all__ = ["Library", "LibraryError", "Program", "Prompt", "ResponseType", "Step", "load_library"]
