"""`python -m bot.emulator --port 8081`: the emulator on its own, with its chat page at /."""

from __future__ import annotations

import argparse

from bot.emulator.runner import run_emulator


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Telegram Bot API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    arguments = parser.parse_args()
    run_emulator(arguments.host, arguments.port)


if __name__ == "__main__":
    main()
