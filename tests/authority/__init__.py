"""The authority: accounts, sessions, orgs and members, invitations, revocations and their feed, workload identity."""
