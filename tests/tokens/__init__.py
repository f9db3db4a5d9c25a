"""Tokens: the macaroon format and its published vectors, caveats, third-party discharges, ticket sealing, how a token is presented."""
