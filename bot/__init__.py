"""Interlude: a Telegram companion for the time between therapy sessions."""

import os

# Opt in now to python-telegram-bot's coming change: durations and retry_after as timedelta.
os.environ.setdefault("PTB_TIMEDELTA", "1")
