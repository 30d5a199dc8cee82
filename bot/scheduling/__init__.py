"""The outbound path: schedule maths, the planner, the dispatcher and Telegram's rate limits."""
