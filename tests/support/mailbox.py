"""A real SMTP server in the test process (aiosmtpd), whose received messages the tests read; and ``cvault dev``'s
mail directory, read the same way.

``mail_relay`` starts one on a free loopback port: plain, STARTTLS (with a certificate from a
local CA, and a login) or implicit TLS. The authority talks to it with ``smtplib`` exactly as it
would to a production relay; a message is in :attr:`Mailbox.messages` once the relay accepted it.
"""

from __future__ import annotations

import email
import email.policy
import re
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp.test_utils import unused_port
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from vault.crypto.local_ca import LocalCA

__all__ = ["RELAY_PASSWORD", "RELAY_USER", "Mailbox", "dev_mail_code", "mail_relay"]

RELAY_USER = "cvault-relay"
RELAY_PASSWORD = "relay-password-1"


@dataclass
class Mailbox:
    host: str
    port: int
    ca_file: Path | None
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def code(self, address: str, prefix: str = "cvm_") -> str | None:
        """The last code with ``prefix`` mailed to ``address``."""
        found = [re.findall(rf"\b{prefix}[A-Za-z0-9_-]+", m.get_content()) for m in self.to(address)]
        codes = [c for batch in found for c in batch]
        return codes[-1] if codes else None


def _authenticate(mailbox: Mailbox) -> Any:
    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == RELAY_USER.encode()
            and auth_data.password == RELAY_PASSWORD.encode()
        )
        if ok:
            mailbox.logins.append(RELAY_USER)
        return AuthResult(success=ok, handled=False)

    return authenticator


@contextmanager
def mail_relay(tmp_path: Path, security: str = "none", *, offer_starttls: bool = True) -> Iterator[Mailbox]:
    """A running relay; ``security`` as the authority's ``smtp_security`` (``starttls`` also wants a login)."""
    ca_file = None
    context = None
    if security != "none":
        ca = LocalCA.create("test mail CA")
        ca_file = tmp_path / "mail-ca.pem"
        ca.save(ca_file, tmp_path / "mail-ca-key.pem")
        issued = ca.issue(tmp_path, "mail", ["localhost", "127.0.0.1"])
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(issued.cert_file, issued.key_file)
    mailbox = Mailbox("127.0.0.1", unused_port(), ca_file)
    kwargs: dict[str, Any] = {}
    if security == "starttls" and offer_starttls:
        kwargs = {
            "tls_context": context,
            "require_starttls": True,
            "authenticator": _authenticate(mailbox),
            "auth_required": True,
            "auth_require_tls": True,
        }
    elif security == "tls":
        kwargs = {"ssl_context": context}
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port, server_hostname="localhost", **kwargs)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def dev_mail_code(mail_dir: Path, address: str, prefix: str = "cvm_") -> str:
    """The last code with ``prefix`` that ``cvault dev`` (no relay: one ``.eml`` file per message) wrote to
    ``address``."""
    codes = []
    for path in sorted(mail_dir.glob("*.eml")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            codes += re.findall(rf"\b{prefix}[A-Za-z0-9_-]+", message.get_content())
    assert codes, f"no {prefix} code for {address} in {mail_dir}"
    return codes[-1]
