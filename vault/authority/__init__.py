"""The token authority (tkdb): users, orgs, memberships, sessions, permission and
service tokens, the login and org dischargers, strip and revocation.

Plain async Python against the protocols in :mod:`vault.authority.interfaces`;
storage implements them and :mod:`vault.web.authority` wires everything up.
See ``docs/authority.md``.
"""
