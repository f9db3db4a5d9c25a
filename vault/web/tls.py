"""Server-side TLS: loading ``tls_cert_file`` / ``tls_key_file`` (and ``tls_client_ca_file``), reloading them.

Every problem with a file is a :class:`~vault.errors.ConfigError` naming the
setting and the path, raised before the service binds its port, so a service
with a broken certificate never starts half-working.

Reloading (SIGHUP, see :mod:`vault.web.runner`) builds a complete new context
from the files first; only if that succeeds does it replace the one new
handshakes use (through the listening context's SNI callback, which hands each
new connection the current context). Connections already open keep theirs, so
nothing is dropped; a reload that fails is logged and the old certificate stays.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from vault.config import Config
from vault.errors import ConfigError

__all__ = ["ServerTLS", "TLSFiles"]

log = logging.getLogger("cvault.web.tls")


@dataclass(frozen=True)
class TLSFiles:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    @classmethod
    def from_config(cls, config: Config) -> TLSFiles | None:
        """The configured files, or ``None`` when TLS is off; half a configuration is an error."""
        if config.tls_cert_file is None and config.tls_key_file is None:
            if config.tls_client_ca_file is not None:
                raise ConfigError("tls_client_ca_file needs tls_cert_file and tls_key_file")
            return None
        if config.tls_cert_file is None or config.tls_key_file is None:
            raise ConfigError("set both tls_cert_file and tls_key_file (CVAULT_TLS_CERT_FILE, CVAULT_TLS_KEY_FILE)")
        return cls(config.tls_cert_file, config.tls_key_file, config.tls_client_ca_file)


def _readable(setting: str, path: Path) -> None:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None


def _holds_certificates(path: Path) -> bool:
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError:
        return False
    return True


def load_context(files: TLSFiles) -> ssl.SSLContext:
    """A server context for ``files``; raises :class:`ConfigError` naming the file at fault."""
    _readable("tls_cert_file", files.cert_file)
    _readable("tls_key_file", files.key_file)
    if files.client_ca_file is not None:
        _readable("tls_client_ca_file", files.client_ca_file)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not _holds_certificates(files.cert_file):
        raise ConfigError(f"tls_cert_file: {files.cert_file} holds no PEM certificate")
    try:
        context.load_cert_chain(files.cert_file, files.key_file)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc.reason) or "mismatch" in str(exc).lower():
            raise ConfigError(
                f"tls_key_file: {files.key_file} is not the key of the certificate in {files.cert_file}"
            ) from None
        raise ConfigError(f"tls_key_file: {files.key_file} holds no usable PEM private key") from None
    if files.client_ca_file is not None:
        if not _holds_certificates(files.client_ca_file):
            raise ConfigError(f"tls_client_ca_file: {files.client_ca_file} holds no PEM certificate")
        context.load_verify_locations(cafile=str(files.client_ca_file))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class ServerTLS:
    """The listening context of one service, whose certificate can be replaced while it serves."""

    def __init__(self, files: TLSFiles) -> None:
        self.files = files
        self._current = load_context(files)
        self.context = load_context(files)
        # Each new handshake switches to the context loaded last (see the module docs).
        self.context.sni_callback = self._pick

    def _pick(self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        connection.context = self._current

    def reload(self) -> bool:
        """Load the files again; on failure log why and keep serving the old certificate."""
        try:
            self._current = load_context(self.files)
        except ConfigError as exc:
            log.error("TLS reload failed, still serving the previous certificate: %s", exc.message)
            return False
        log.info("TLS certificate reloaded from %s", self.files.cert_file)
        return True
