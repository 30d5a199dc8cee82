"""A local Telegram Bot API for tests, the demo and benchmarks: it speaks the same HTTP
API as Telegram, enforces the same limits and errors, and checks every request
against the Bot API spec (spec/api.json).
"""

from bot.emulator.config import EmulatorConfig
from bot.emulator.control import EmulatorControl, EmulatorError
from bot.emulator.runner import EmulatorThread, ServerThread, run_emulator
from bot.emulator.server import create_app

__all__ = [
    "EmulatorConfig",
    "EmulatorControl",
    "EmulatorError",
    "EmulatorThread",
    "ServerThread",
    "create_app",
    "run_emulator",
]
