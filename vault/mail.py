"""How the authority sends email: over SMTP to the configured relay, or, under ``cvault dev``, into a directory.

Both implement :class:`vault.authority.interfaces.Mailer` (``await send(to, subject, body)``).
:class:`SMTPRelay` speaks to a real relay with the standard library's ``smtplib`` in a worker
thread: STARTTLS (required when the relay is configured for it: a relay that does not offer it
is refused, never silently used in plain text), implicit TLS, or plain text for a relay on
loopback; the relay's certificate is verified with its host name. A failure is
:class:`vault.errors.Unavailable` naming the relay, never the message (it carries a code).
:class:`MailDirectory` is ``cvault dev``'s: each message a ``.eml`` file, mode 0600.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import smtplib
import ssl
import time
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from vault.errors import Unavailable

if TYPE_CHECKING:
    from vault.authority.interfaces import Mailer
    from vault.config import Config

__all__ = ["MailDirectory", "SMTPRelay", "mailer_from_config"]


def _message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(time.time(), usegmt=True)
    message["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    return message


class SMTPRelay:
    """One SMTP conversation per message with ``host:port`` (``security``: ``starttls``, ``tls`` or ``none``)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        sender: str,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError("security must be starttls, tls or none")
        self._host = host
        self._port = port
        self._security = security
        self._sender = sender
        self._username = username
        self._password = password
        self._ca_file = ca_file
        self._timeout = timeout

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self._ca_file) if self._ca_file else None)

    def _send(self, message: EmailMessage) -> None:
        if self._security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self._host, self._port, timeout=self._timeout, context=self._context()
            )
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        with smtp:
            smtp.ehlo()
            if self._security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("STARTTLS not offered")
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if self._username is not None:
                smtp.login(self._username, self._password or "")
            smtp.send_message(message)

    async def send(self, to: str, subject: str, body: str) -> None:
        message = _message(self._sender, to, subject, body)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send, message), self._timeout * 2)
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            # The type only: smtplib's text can quote the relay's reply to our message.
            raise Unavailable(
                f"the mail relay {self._host}:{self._port} did not take the message ({type(exc).__name__}); "
                "try again later"
            ) from None


class MailDirectory:
    """``cvault dev``'s mail: each message written to ``directory`` (0700) as a ``.eml`` file (0600)."""

    def __init__(self, directory: Path, *, sender: str) -> None:
        self._directory = directory
        self._sender = sender

    async def send(self, to: str, subject: str, body: str) -> None:
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{os.urandom(4).hex()}.eml"
        data = _message(self._sender, to, subject, body).as_bytes()
        fd = os.open(self._directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)


def mailer_from_config(config: Config) -> Mailer | None:
    """The relay of ``smtp_url``; under ``cvault dev`` without one, ``<data_dir>/mail``; else None (no mail)."""
    if config.smtp_url is not None:
        parts = urlsplit(config.smtp_url)
        assert parts.hostname is not None and parts.port is not None  # checked by vault.config
        return SMTPRelay(
            parts.hostname,
            parts.port,
            security=config.smtp_security,
            sender=config.smtp_from,
            username=config.smtp_username,
            password=config.smtp_password,
            ca_file=config.smtp_ca_file,
            timeout=config.smtp_timeout,
        )
    if config.dev:
        return MailDirectory(config.data_dir / "mail", sender=config.smtp_from)
    return None
