"""Interlude: a Telegram companion for the time between therapy sessions."""
