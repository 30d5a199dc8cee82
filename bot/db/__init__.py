"""Storage: models, the engine, transactions and migrations."""
