"""Tokens: the macaroon format and its published vectors, caveats, third-party discharges, ticket
sealing, and how a request presents a token."""
