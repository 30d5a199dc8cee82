"""Domain logic with no Telegram imports: onboarding, client controls, replies, review."""
