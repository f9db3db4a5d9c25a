"""``cvault orgs``: organizations and their members (with the login session)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vault.client import Client
from vault.client.authority_models import Member, Membership
from vault.client.models import to_json
from vault.errors import BadRequest, NotFound

from .client_options import client_settings, runs_with_client
from .output import print_json, print_table

__all__ = ["register", "resolve_member", "resolve_org"]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("orgs", help="organizations and their members")
    osub = parser.add_subparsers(dest="orgs_command", metavar="SUBCOMMAND")
    osub.required = True

    p = osub.add_parser("list", help="your organizations and your role in each")
    runs_with_client(p, _list)

    p = osub.add_parser("create", help="create an organization (you become its owner)")
    p.add_argument("slug")
    runs_with_client(p, _create)

    p = osub.add_parser("members", help="list an organization's members")
    p.add_argument("org", help="org id or slug")
    runs_with_client(p, _members)

    p = osub.add_parser("invite", help="invite an email into an organization (it joins only when the invitee accepts)")
    p.add_argument("org", help="org id or slug")
    p.add_argument("email")
    p.add_argument("--role", required=True, choices=["owner", "operator", "reader", "auditor"])
    runs_with_client(p, _invite)

    p = osub.add_parser("invitations", help="invitations waiting for you (the logged-in email)")
    runs_with_client(p, _invitations)

    p = osub.add_parser(
        "accept",
        help="accept an invitation with the code its owner gave you (logged in, or creating your account)",
    )
    p.add_argument("invitation", help="invitation id (from `cvault orgs invitations` or the org's owner)")
    p.add_argument("--code", required=True, help="the cvi_ code the org's owner gave you")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="no account yet: create it, with its password on stdin (otherwise your saved session accepts); "
        "without --verification, first has the authority mail the invited address a verification code",
    )
    p.add_argument("--verification", metavar="CODE", help="the cvm_ code the authority mailed to the invited address")
    p.add_argument(
        "--email",
        help="with --password-stdin: your email; after accepting, log in with it and save the session (first join)",
    )
    runs_with_client(p, _accept)

    p = osub.add_parser("set-role", help="change a member's role")
    p.add_argument("org", help="org id or slug")
    p.add_argument("member", help="the member's email or user id (`cvault orgs members ORG`)")
    p.add_argument("role", choices=["owner", "operator", "reader", "auditor"])
    runs_with_client(p, _set_role)

    p = osub.add_parser("remove-member", help="remove a member")
    p.add_argument("org", help="org id or slug")
    p.add_argument("member", help="the member's email or user id (`cvault orgs members ORG`)")
    runs_with_client(p, _remove_member)


async def resolve_org(client: Client, text: str) -> Membership:
    """One of the caller's orgs (and their role in it), named by id or slug."""
    orgs = await client.authority.list_orgs()
    for org in orgs:
        if str(org.id) == text or org.slug == text:
            return org
    raise NotFound(f"you are not a member of an organization {text!r}; `cvault orgs list` shows yours")


async def resolve_member(client: Client, org: Membership, text: str) -> Member:
    """A member of ``org``, named by email (as ``orgs invite`` takes it) or user id."""
    wanted = text.strip()
    for member in await client.authority.list_members(org.id):
        if str(member.user_id) == wanted or member.email.lower() == wanted.lower():
            return member
    raise NotFound(f"{text!r} is not a member of {org.slug}; `cvault orgs members {org.slug}` lists them")


async def _list(client: Client, args: argparse.Namespace) -> int:
    orgs = await client.authority.list_orgs()
    if args.json:
        print_json(to_json(orgs))
    else:
        print_table(["ID", "SLUG", "ROLE"], [[o.id, o.slug, o.role] for o in orgs])
    return 0


async def _create(client: Client, args: argparse.Namespace) -> int:
    org = await client.authority.create_org(args.slug)
    print_json(to_json(org)) if args.json else print(f"organization {org.slug} created (id {org.id})")
    return 0


async def _members(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    members = await client.authority.list_members(org.id)
    if args.json:
        print_json(to_json(members))
    else:
        print_table(["USER", "EMAIL", "ROLE"], [[m.user_id, m.email, m.role] for m in members])
    return 0


async def _invite(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    invitation = await client.authority.invite(org.id, args.email, args.role)
    if args.json:
        print_json(to_json(invitation))
    else:
        print(
            f"invited {invitation.email} as {invitation.role} of {org.slug} "
            f"(invitation {invitation.id}, expires {invitation.expires_at})\n"
            f"give them the id and the code; logged in, they accept with\n"
            f"  cvault orgs accept {invitation.id} --code {invitation.code}\n"
            f"or, with no account yet, add --password-stdin: the authority mails them a verification code, and\n"
            f"  cvault orgs accept {invitation.id} --code {invitation.code} --verification cvm_... "
            f"--email {invitation.email} --password-stdin\n"
            f"creates the account and logs them in"
        )
    return 0


async def _invitations(client: Client, args: argparse.Namespace) -> int:
    pending = await client.authority.invitations()
    if args.json:
        print_json(to_json(pending))
    else:
        print_table(["ID", "ORG", "ROLE", "EXPIRES"], [[i.id, i.slug, i.role, i.expires_at] for i in pending])
    return 0


async def _accept(client: Client, args: argparse.Namespace) -> int:
    if args.verification is not None and not args.password_stdin:
        raise BadRequest("--verification creates your account: give its new password with --password-stdin")
    if args.password_stdin and args.verification is None:
        # No account yet: proof that you read the invited mailbox comes first.
        message = await client.authority.send_verification(args.invitation, code=args.code)
        print(
            f"{message}\nthen: cvault orgs accept {args.invitation} --code CODE --verification cvm_... "
            "--email EMAIL --password-stdin (creates the account and logs you in)",
            file=sys.stderr,
        )
        return 0
    password = None
    if args.email and not args.password_stdin:
        raise BadRequest("--email logs a new account in after accepting: give its password with --password-stdin")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise BadRequest("--password-stdin given but stdin is empty")
    reply = await client.authority.accept(
        args.invitation, code=args.code, password=password, verification=args.verification
    )
    saved = None
    if args.email and password is not None:
        # The first join in one command: the account the accept created logs in at once, as `cvault login` would.
        from .login import save_session

        session = await client.authority.login(args.email, password)
        settings = client_settings(args)
        save_session(settings.session_file, client.authority_url, client.store_url, args.email, session)
        saved = str(settings.session_file.path)
    if args.json:
        print_json({**to_json(reply), "session_saved": saved})
    else:
        print(f"you are now {reply.role} of {reply.slug} (org {reply.org})")
        if saved:
            print(f"logged in as {args.email}; session saved in {saved}")
    return 0


async def _set_role(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    member = await resolve_member(client, org, args.member)
    reply = await client.authority.set_role(org.id, member.user_id, args.role)
    if args.json:
        print_json(to_json(reply))
    else:
        print(f"{member.email} (user {member.user_id}) is now {args.role} of {org.slug}")
    return 0


async def _remove_member(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    member = await resolve_member(client, org, args.member)
    await client.authority.remove_member(org.id, member.user_id)
    if args.json:
        print_json({"removed": member.user_id, "email": member.email})
    else:
        print(f"{member.email} (user {member.user_id}) removed from {org.slug}")
    return 0
