"""An invitation creates an account only for whoever reads the invited mailbox (a real SMTP relay, in process).

Whoever holds the invitation code (its inviter too) can have the authority mail a
verification code to the invited address, and nothing more: the reply is the same
whether or not the address has an account, and without the mailed code no account
is created. The relay is a real SMTP server (aiosmtpd); the authority speaks to it
with ``smtplib`` over STARTTLS with a login, implicit TLS, or plain text.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port

from tests.support.authority_app import (
    PASSWORD,
    AppFactory,
    Client,
    authority_services,
    bearer,
    bootstrap_owner,
    call,
    login,
    make_config,
    pool_of,
)
from tests.support.cvault_command import cvault_env
from tests.support.dev_world import run_cvault
from tests.support.harness import PASSWORD as HARNESS_PASSWORD
from tests.support.harness import running_services
from tests.support.mailbox import RELAY_PASSWORD, RELAY_USER, Mailbox, mail_relay
from vault.authority.invitations import VERIFICATION_RESEND
from vault.config import Config, load_config
from vault.crypto.keyring import MasterKey
from vault.errors import ConfigError
from vault.mail import SMTPRelay


@pytest.fixture
def mailbox(tmp_path: Path) -> Mailbox:
    with mail_relay(tmp_path) as relay:
        yield relay  # type: ignore[misc]


def _config(database_url: str, master_key: MasterKey, mailbox: Mailbox, **overrides: object) -> Config:
    settings: dict[str, object] = {"smtp_url": mailbox.url, "smtp_security": "none", "smtp_from": "cvault@acme.test"}
    return make_config(database_url, master_key, **{**settings, **overrides})


@pytest.fixture
async def mail_client(make_client: AppFactory, database_url: str, master_key: MasterKey, mailbox: Mailbox) -> Client:
    return await make_client(config=_config(database_url, master_key, mailbox))


async def _invite(client: Client, session: str, org: int, email: str, role: str = "reader") -> dict:  # type: ignore[type-arg]
    body: dict = await call(  # type: ignore[type-arg]
        client,
        "POST",
        f"/v1/orgs/{org}/invitations",
        json={"email": email, "role": role},
        headers=bearer(session),
        expect=201,
    )
    return body


async def _registered(client: Client, email: str) -> bool:
    return await authority_services(client).account_store.user_by_email(email) is not None


async def test_an_inviter_cannot_create_the_invited_emails_account(mail_client: Client, mailbox: Mailbox) -> None:
    client = mail_client
    await bootstrap_owner(client)
    await authority_services(client).accounts.create_user("mallory@example.com", PASSWORD)
    mallory = await login(client, "mallory@example.com")
    org = await call(client, "POST", "/v1/orgs", headers=bearer(mallory), json={"slug": "mallory"}, expect=201)
    own = await _invite(client, mallory, org["id"], "alice@example.com")
    path = f"/v1/invitations/{own['id']}/accept"

    # Mallory holds the code: it buys a message to alice, not alice's account.
    sent = await call(client, "POST", path, json={"code": own["code"], "password": PASSWORD}, expect=202)
    assert sent["status"] == "verification_sent"
    assert not await _registered(client, "alice@example.com")
    [message] = mailbox.to("alice@example.com")
    assert message["From"] == "cvault@acme.test" and "mallory" in message["Subject"]
    verification = mailbox.code("alice@example.com")
    assert verification is not None and verification not in json.dumps(sent)
    for guess in ("cvm_" + "A" * 43, own["code"].replace("cvi_", "cvm_")):
        body = {"code": own["code"], "password": PASSWORD, "verification": guess}
        await call(client, "POST", path, json=body, expect=404)
    assert not await _registered(client, "alice@example.com")
    stored = await pool_of(client).fetchval(
        "SELECT verification_digest FROM authority.invitations WHERE id = $1", own["id"]
    )
    assert stored is not None and verification.encode() not in bytes(stored)

    # Alice reads her mailbox: the mailed code, the invitation code and her password create her account.
    body = {"code": own["code"], "password": "alice's own password", "verification": verification}
    accepted = await call(client, "POST", path, json=body, expect=200)
    session = await login(client, "alice@example.com", "alice's own password")
    me = await call(client, "GET", "/v1/me", headers=bearer(session), expect=200)
    assert me["user_id"] == accepted["user_id"]
    await call(client, "POST", path, json=body, expect=404)  # once only


async def test_the_reply_is_the_same_whatever_the_emails_state(mail_client: Client, mailbox: Mailbox) -> None:
    client = mail_client
    owner = await bootstrap_owner(client)
    await authority_services(client).accounts.create_user("known@example.com", PASSWORD)
    replies = []
    for email in ("known@example.com", "nobody@example.com"):
        invitation = await _invite(client, owner.session, owner.org_id, email)
        response = await client.post(
            f"/v1/invitations/{invitation['id']}/accept", json={"code": invitation["code"], "password": PASSWORD}
        )
        replies.append((response.status, await response.json()))
    assert replies[0] == replies[1] and replies[0][0] == 202
    # The registered address is told to log in and gets no code; the new one gets a code.
    assert mailbox.code("known@example.com") is None
    assert "already has an account" in mailbox.to("known@example.com")[0].get_content()
    assert mailbox.code("nobody@example.com") is not None
    # And a code for the registered address, however obtained, creates nothing: the same 404 as a wrong one.
    invitation = await _invite(client, owner.session, owner.org_id, "known@example.com")
    path = f"/v1/invitations/{invitation['id']}/accept"
    await call(client, "POST", path, json={"code": invitation["code"]}, expect=202)
    wrong = {"code": invitation["code"], "password": PASSWORD, "verification": "cvm_" + "B" * 43}
    assert (await call(client, "POST", path, json=wrong, expect=404))["error"]["code"] == "not_found"


async def test_without_a_relay_an_invitation_creates_no_account(client: Client) -> None:
    owner = await bootstrap_owner(client)
    invitation = await _invite(client, owner.session, owner.org_id, "new@example.com")
    path = f"/v1/invitations/{invitation['id']}/accept"
    refused = await call(client, "POST", path, json={"code": invitation["code"], "password": PASSWORD}, expect=503)
    assert "CVAULT_SMTP_URL" in refused["error"]["message"]
    assert not await _registered(client, "new@example.com")


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_the_relay_is_reached_over_tls(
    make_client: AppFactory, database_url: str, master_key: MasterKey, tmp_path: Path, security: str
) -> None:
    with mail_relay(tmp_path, security) as relay:
        login_settings = (
            {"smtp_username": RELAY_USER, "smtp_password": RELAY_PASSWORD} if security == "starttls" else {}
        )
        config = _config(
            database_url, master_key, relay, smtp_security=security, smtp_ca_file=relay.ca_file, **login_settings
        )
        client = await make_client(config=config)
        owner = await bootstrap_owner(client)
        invitation = await _invite(client, owner.session, owner.org_id, "tls@example.com")
        path = f"/v1/invitations/{invitation['id']}/accept"
        await call(client, "POST", path, json={"code": invitation["code"]}, expect=202)
        assert relay.code("tls@example.com") is not None
        assert relay.logins == ([RELAY_USER] if security == "starttls" else [])
        # The relay's certificate is checked: a CA that did not sign it refuses the conversation.
        other = _config(database_url, master_key, relay, smtp_security=security, **login_settings)
        untrusting = await make_client(config=other)
        invitation = await _invite(client, owner.session, owner.org_id, "tls2@example.com")
        path = f"/v1/invitations/{invitation['id']}/accept"
        await call(untrusting, "POST", path, json={"code": invitation["code"]}, expect=503)
        assert relay.code("tls2@example.com") is None


async def test_a_relay_without_starttls_is_not_used_in_plain_text(
    make_client: AppFactory, database_url: str, master_key: MasterKey, tmp_path: Path
) -> None:
    with mail_relay(tmp_path, "starttls", offer_starttls=False) as relay:
        client = await make_client(
            config=_config(database_url, master_key, relay, smtp_security="starttls", smtp_ca_file=relay.ca_file)
        )
        owner = await bootstrap_owner(client)
        invitation = await _invite(client, owner.session, owner.org_id, "plain@example.com")
        path = f"/v1/invitations/{invitation['id']}/accept"
        refused = await call(client, "POST", path, json={"code": invitation["code"]}, expect=503)
        assert "mail relay" in refused["error"]["message"]
        assert relay.messages == []


async def test_the_cli_creates_an_invited_account_with_the_mailed_code(
    database_url: str, mailbox: Mailbox, tmp_path: Path
) -> None:
    async with running_services(database_url, smtp_url=mailbox.url, smtp_security="none") as h:
        owner = await h.new_user("owner@example.com")
        await h.create_org(owner, "acme")

        async def cvault(who: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
            home = tmp_path / who
            env = cvault_env(
                {
                    "CVAULT_AUTHORITY_URL": h.authority_url,
                    "CVAULT_STORE_URL": h.store_url,
                    "HOME": str(home),
                    "XDG_CONFIG_HOME": str(home / "cfg"),
                }
            )
            # In a thread: the services run on this event loop.
            r = await asyncio.to_thread(run_cvault, *args, env=env, stdin=stdin)
            return r.status, r.out, r.err

        status, out, err = await cvault(
            "owner", "login", "--email", "owner@example.com", "--password-stdin", stdin=HARNESS_PASSWORD + "\n"
        )
        assert status == 0, (out, err)
        status, out, err = await cvault("owner", "orgs", "invite", "acme", "carol@example.com", "--role", "operator")
        assert status == 0 and "--code cvi_" in out, (out, err)
        code = out.split("--code ", 1)[1].split()[0]
        invitation_id = out.split("(invitation ", 1)[1].split(",")[0]
        accept = ("orgs", "accept", invitation_id, "--code", code, "--password-stdin")
        status, out, err = await cvault("carol", *accept, stdin=HARNESS_PASSWORD + "\n")
        assert status == 0 and "verification" in err, (out, err)
        verification = mailbox.code("carol@example.com")
        assert verification is not None
        status, out, err = await cvault("carol", *accept, "--verification", verification, stdin=HARNESS_PASSWORD + "\n")
        assert status == 0 and "operator of acme" in out, (out, err)
        assert HARNESS_PASSWORD not in out + err
        status, out, err = await cvault(
            "carol", "login", "--email", "carol@example.com", "--password-stdin", stdin=HARNESS_PASSWORD + "\n"
        )
        assert status == 0, (out, err)


@pytest.mark.parametrize("host", ["mail.example.com", "192.0.2.25"])
def test_plain_text_mail_only_to_a_loopback_relay(host: str) -> None:
    env = {"CVAULT_SMTP_URL": f"smtp://{host}:25", "CVAULT_SMTP_SECURITY": "none"}
    with pytest.raises(ConfigError, match="loopback"):
        load_config(env=env)
    with pytest.raises(ValueError, match="loopback"):
        SMTPRelay(host, 25, security="none", sender="cvault@example.com")
    # On loopback, or with TLS, the same relay settings load.
    assert load_config(env={**env, "CVAULT_SMTP_URL": "smtp://127.0.0.1:25"}).smtp_security == "none"
    assert load_config(env={**env, "CVAULT_SMTP_SECURITY": "starttls"}).smtp_url == f"smtp://{host}:25"


@pytest.mark.parametrize(
    "email",
    [
        "alice@example.com,eve@evil.test",
        "eve@evil.test<alice@example.com>",
        "alice@example.com;eve@evil.test",
        '"eve@evil.test"@example.com',
        "alice@example.com\x00",
    ],
)
async def test_an_invitation_names_one_bare_address(mail_client: Client, mailbox: Mailbox, email: str) -> None:
    # Else the verification code goes to an address other than the account's (eve proves hers, gets alice's name).
    owner = await bootstrap_owner(mail_client)
    refused = await call(
        mail_client,
        "POST",
        f"/v1/orgs/{owner.org_id}/invitations",
        json={"email": email, "role": "reader"},
        headers=bearer(owner.session),
        expect=400,
    )
    assert refused["error"]["code"] == "bad_request"
    assert mailbox.messages == []


async def test_an_invitation_code_buys_one_message_a_minute(
    make_client: AppFactory, database_url: str, master_key: MasterKey, mailbox: Mailbox
) -> None:
    now = [time.time()]
    client = await make_client(config=_config(database_url, master_key, mailbox), clock=lambda: now[0])
    owner = await bootstrap_owner(client)
    invitation = await _invite(client, owner.session, owner.org_id, "flooded@example.com")
    path = f"/v1/invitations/{invitation['id']}/accept"
    await call(client, "POST", path, json={"code": invitation["code"]}, expect=202)
    first = mailbox.code("flooded@example.com")
    # Asking again at once mails nothing and keeps the code that went out.
    for _ in range(3):
        response = await client.post(path, json={"code": invitation["code"]})
        assert response.status == 429 and response.headers["Retry-After"] == str(VERIFICATION_RESEND)
    assert len(mailbox.to("flooded@example.com")) == 1
    now[0] += VERIFICATION_RESEND + 1
    await call(client, "POST", path, json={"code": invitation["code"]}, expect=202)
    second = mailbox.code("flooded@example.com")
    assert len(mailbox.to("flooded@example.com")) == 2 and second != first
    # Only the newest code creates the account.
    body = {"code": invitation["code"], "password": PASSWORD, "verification": first}
    await call(client, "POST", path, json=body, expect=404)
    await call(client, "POST", path, json={**body, "verification": second}, expect=200)


async def test_a_message_the_relay_refused_can_be_asked_for_again_at_once(
    make_client: AppFactory, database_url: str, master_key: MasterKey, mailbox: Mailbox
) -> None:
    down = await make_client(
        config=_config(database_url, master_key, mailbox, smtp_url=f"smtp://127.0.0.1:{unused_port()}")
    )
    owner = await bootstrap_owner(down)
    invitation = await _invite(down, owner.session, owner.org_id, "retry@example.com")
    path = f"/v1/invitations/{invitation['id']}/accept"
    await call(down, "POST", path, json={"code": invitation["code"]}, expect=503)
    # Nothing was sent, so the one-a-minute rule does not apply: the relay back, the next ask is mailed.
    up = await make_client(config=_config(database_url, master_key, mailbox))
    await call(up, "POST", path, json={"code": invitation["code"]}, expect=202)
    assert mailbox.code("retry@example.com") is not None


async def test_mail_does_not_wait_for_the_threads_that_hash_passwords(mailbox: Mailbox) -> None:
    # The default executor (password hashing) busy to the last thread: a message still goes out.
    busy = threading.Event()
    default = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()
    loop.set_default_executor(default)
    blocker = loop.run_in_executor(None, busy.wait)
    try:
        relay = SMTPRelay(mailbox.host, mailbox.port, security="none", sender="cvault@example.com")
        # The bound only ends the test on a deadlock (the old code's); a send takes milliseconds.
        await asyncio.wait_for(relay.send("free@example.com", "subject", "body"), 60)
        assert len(mailbox.to("free@example.com")) == 1
    finally:
        busy.set()
        await blocker
        default.shutdown()
