"""The store: secrets, store tokens, envelope encryption and keys, the pool, what a request sends to
PostgreSQL, bad input."""
