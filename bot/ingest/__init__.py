"""The inbound path: Telegram updates are stored in the inbox before anything else happens."""
