"""TLS: both services over real TLS (certificates made with ``cryptography`` here), the CLI,
the client and hvac verifying them, a wrong CA refused, mutual TLS, SIGHUP reload, clear refusals."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shlex
import signal
import ssl
import subprocess
import warnings
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import hvac
import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import unused_port
from cryptography import x509

from tests.support.cvault_command import cvault_command, cvault_env
from tests.support.serving import serving
from vault.client import Client, Credentials
from vault.config import Config, load_config
from vault.crypto.local_ca import Issued, LocalCA
from vault.errors import ConfigError, ConnectionFailed
from vault.web.runner import serve_app
from vault.web.tls import TLSFiles, load_context

BOUND = 90.0


def _serial(der: bytes) -> int:
    return x509.load_der_x509_certificate(der).serial_number


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca = LocalCA.create("test CA")
    ca.save(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    server = ca.issue(tmp_path, "server", ["localhost", "127.0.0.1"])
    client = ca.issue(tmp_path, "client", ["workload-1"], client=True)
    other = LocalCA.create("someone else's CA")
    other.save(tmp_path / "other-ca.pem", tmp_path / "other-ca-key.pem")
    stranger = other.issue(tmp_path, "stranger", ["workload-2"], client=True)
    return {
        "dir": tmp_path,
        "ca": ca,
        "ca_file": tmp_path / "ca.pem",
        "server": server,
        "client": client,
        "other_ca_file": tmp_path / "other-ca.pem",
        "stranger": stranger,
    }


# --- `cvault dev --tls`: both services, the CLI, the client and hvac over https.


class Dev:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def line(self, pattern: str) -> re.Match[str]:
        assert self.process.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.process.stdout.readline(), BOUND)
            assert raw, f"cvault dev exited: {self.lines}"
            self.lines.append(raw.decode().rstrip("\n"))
            match = re.search(pattern, self.lines[-1])
            if match:
                return match


@contextlib.asynccontextmanager
async def _dev_tls(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Dev, dict[str, str]]]:
    home = tmp_path / "home"
    env = cvault_env(
        {
            "CVAULT_DATABASE_URL": database_url,
            "CVAULT_AUTHORITY_LISTEN": f"127.0.0.1:{unused_port()}",
            "CVAULT_STORE_LISTEN": f"127.0.0.1:{unused_port()}",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
        }
    )
    log_file = (tmp_path / "dev.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *cvault_command("dev", "--tls", "--data-dir", str(tmp_path / "data")),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=log_file,
    )
    dev = Dev(process)
    try:
        await dev.line(r"ready in")
        exports: dict[str, str] = {}
        while "CVAULT_VAULT" not in exports:
            match = await dev.line(r"^export (\w+)=(.*)$")
            exports[match.group(1)] = shlex.split(match.group(2))[0]
        yield dev, {**env, **exports}
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), BOUND)
        log_file.close()


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cvault_command(*args), env=env, input=stdin, capture_output=True, text=True, timeout=BOUND, check=False
    )


async def test_dev_tls_main_journey_cli_client_and_hvac_over_https(tmp_path: Path, database_url: str) -> None:
    async with _dev_tls(tmp_path, database_url) as (_dev, env):
        assert env["CVAULT_STORE_URL"].startswith("https://")
        assert env["CVAULT_AUTHORITY_URL"].startswith("https://")
        ca_file = env["CVAULT_CACERT"]
        assert Path(ca_file).is_file()

        # The README's journey, over TLS, with the printed CVAULT_CACERT.
        done = await asyncio.to_thread(_run, env, "secrets", "set", "db/url", stdin="postgres://tls-secret")
        assert done.returncode == 0, done.stderr
        got = await asyncio.to_thread(_run, env, "secrets", "get", "db/url")
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip() == "postgres://tls-secret"

        # The token's third-party location is the https authority.
        debug = await asyncio.to_thread(_run, env, "tokens", "debug", "--json", env["CVAULT_STORE_TOKEN"])
        assert env["CVAULT_AUTHORITY_URL"] + "/org" in debug.stdout

        # Without the CA, the CLI refuses the certificate and says what to do.
        no_ca = {k: v for k, v in env.items() if k != "CVAULT_CACERT"}
        refused = await asyncio.to_thread(_run, no_ca, "secrets", "get", "db/url")
        assert refused.returncode == 1
        assert "not trusted" in refused.stderr and "CVAULT_CACERT" in refused.stderr
        # --ca-cert works as the variable does.
        flagged = await asyncio.to_thread(_run, no_ca, "secrets", "get", "--ca-cert", ca_file, "db/url")
        assert flagged.returncode == 0, flagged.stderr

        # The typed client, with the same CA, and with a wrong one.
        state = json.loads((tmp_path / "data" / "dev.json").read_text())
        credentials = Credentials.from_text(store_token=state["store_token"], session=state["session"])
        async with Client(
            store_url=env["CVAULT_STORE_URL"],
            authority_url=env["CVAULT_AUTHORITY_URL"],
            credentials=credentials,
            ca_cert=ca_file,
        ) as client:
            bundle = await client.store_bundle([])
        wrong = LocalCA.create("wrong CA")
        wrong.save(tmp_path / "wrong.pem", tmp_path / "wrong-key.pem")
        async with Client(
            store_url=env["CVAULT_STORE_URL"],
            authority_url=env["CVAULT_AUTHORITY_URL"],
            credentials=credentials,
            ca_cert=str(tmp_path / "wrong.pem"),
        ) as client:
            with pytest.raises(ConnectionFailed, match="not trusted"):
                await client.authority.keys()

        # hvac over https, verifying with the dev CA; refused with a wrong CA.
        def hvac_read(verify: str) -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                c = hvac.Client(url=env["CVAULT_STORE_URL"] + "/vault", token=bundle, verify=verify)
                return c.secrets.kv.v2.read_secret_version("db/url", mount_point="dev/default")

        read = await asyncio.to_thread(hvac_read, ca_file)
        assert read["data"]["data"] == {"value": "postgres://tls-secret"}
        with pytest.raises(requests.exceptions.SSLError):
            await asyncio.to_thread(hvac_read, str(tmp_path / "wrong.pem"))
        credentials_seen = [state["store_token"], state["session"], state["password"], bundle]

    # `cvault dev` writes an access line per request, and none of the credentials or the value.
    logged = (tmp_path / "dev.log").read_text()
    assert logged.count(" INFO cvault.access: ") >= 8
    for secret in [*credentials_seen, "postgres://tls-secret"]:
        assert secret not in logged
    assert "cv1_" not in logged and "cvs_" not in logged


# --- mutual TLS, reload, refusals: one service in this process.


def _serving(config: Config) -> Any:
    return serving(config, url="https://127.0.0.1:{port}")


def _tls_config(pki: dict[str, Any], **more: Any) -> Config:
    return replace(Config(), tls_cert_file=pki["server"].cert_file, tls_key_file=pki["server"].key_file, **more)


def _client_context(ca: Path, cert: Issued | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(cert.cert_file, cert.key_file)
    return context


async def _get(port: int, context: ssl.SSLContext) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"https://127.0.0.1:{port}/healthz", ssl=context) as r:
        return r.status


async def test_mutual_tls_admits_only_clients_with_a_certificate_from_the_client_ca(
    pki: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _tls_config(pki, tls_client_ca_file=pki["ca_file"])
    async with _serving(config) as port:
        assert await _get(port, _client_context(pki["ca_file"], pki["client"])) == 200
        for cert in (None, pki["stranger"]):
            with pytest.raises(aiohttp.ClientError):
                await _get(port, _client_context(pki["ca_file"], cert))

        # requests (hvac's transport) with a client certificate.
        def with_requests(cert: tuple[str, str] | None) -> int:
            url = f"https://127.0.0.1:{port}/healthz"
            return requests.get(url, verify=str(pki["ca_file"]), cert=cert, timeout=10).status_code

        client = (str(pki["client"].cert_file), str(pki["client"].key_file))
        assert await asyncio.to_thread(with_requests, client) == 200
        with pytest.raises(requests.exceptions.RequestException):
            await asyncio.to_thread(with_requests, None)

        # The project's client presents CVAULT_CLIENT_CERT / CVAULT_CLIENT_KEY.
        monkeypatch.setenv("CVAULT_CLIENT_CERT", client[0])
        monkeypatch.setenv("CVAULT_CLIENT_KEY", client[1])
        url = f"https://127.0.0.1:{port}"
        async with Client(store_url=url, authority_url=url, ca_cert=str(pki["ca_file"])) as c:
            assert await c.http.request("GET", url + "/healthz") == {"status": "ok"}


async def test_sighup_reloads_the_certificate_without_dropping_open_connections(pki: dict[str, Any]) -> None:
    context = _client_context(pki["ca_file"])
    async with _serving(_tls_config(pki)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
        first = _serial(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))

        async def ask() -> bytes:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
            length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            return head

        assert (await ask()).startswith(b"HTTP/1.1 200")
        # A new certificate in the same files, then SIGHUP.
        renewed = pki["ca"].issue(pki["dir"], "renewed", ["localhost", "127.0.0.1"])
        os.replace(renewed.cert_file, pki["server"].cert_file)
        os.replace(renewed.key_file, pki["server"].key_file)
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.2)

        # The open connection still works; a new one gets the new certificate.
        assert (await ask()).startswith(b"HTTP/1.1 200")
        _, fresh = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
        second = _serial(fresh.get_extra_info("ssl_object").getpeercert(binary_form=True))
        assert second != first
        assert second == x509.load_pem_x509_certificate(pki["server"].cert_file.read_bytes()).serial_number

        # A broken file on reload is logged and the current certificate stays in service.
        pki["server"].cert_file.write_text("not a certificate")
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.2)
        _, again = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
        assert _serial(again.get_extra_info("ssl_object").getpeercert(binary_form=True)) == second
        for w in (writer, fresh, again):
            w.close()


def test_unreadable_or_mismatched_files_are_named(pki: dict[str, Any]) -> None:
    server: Issued = pki["server"]
    missing = pki["dir"] / "missing.pem"
    with pytest.raises(ConfigError, match=f"tls_cert_file: cannot read {missing}"):
        load_context(TLSFiles(missing, server.key_file))
    with pytest.raises(ConfigError, match=f"tls_key_file: cannot read {missing}"):
        load_context(TLSFiles(server.cert_file, missing))
    # The client's key is a valid key, but not the server certificate's.
    with pytest.raises(ConfigError, match=f"tls_key_file: {pki['client'].key_file} is not the key of the certificate"):
        load_context(TLSFiles(server.cert_file, pki["client"].key_file))
    garbage = pki["dir"] / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=f"tls_cert_file: {garbage} holds no PEM certificate"):
        load_context(TLSFiles(garbage, server.key_file))
    with pytest.raises(ConfigError, match="tls_client_ca_file: cannot read"):
        load_context(TLSFiles(server.cert_file, server.key_file, missing))
    with pytest.raises(ConfigError, match="set both tls_cert_file and tls_key_file"):
        TLSFiles.from_config(replace(Config(), tls_cert_file=server.cert_file))


def test_serve_refuses_to_start_with_a_mismatched_key_naming_it(pki: dict[str, Any], database_url: str) -> None:
    port = unused_port()
    env = cvault_env(
        {
            "CVAULT_DATABASE_URL": database_url,
            "CVAULT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
            "CVAULT_AUTHORITY_LISTEN": f"0.0.0.0:{port}",
            "CVAULT_TLS_CERT_FILE": str(pki["server"].cert_file),
            "CVAULT_TLS_KEY_FILE": str(pki["client"].key_file),
        }
    )
    result = subprocess.run(
        cvault_command("serve", "authority"), env=env, capture_output=True, text=True, timeout=BOUND, check=False
    )
    assert result.returncode == 1
    assert f"tls_key_file: {pki['client'].key_file} is not the key" in result.stderr
    assert "listening" not in result.stderr


async def test_plain_http_needs_loopback_or_listen_insecure(caplog: pytest.LogCaptureFixture) -> None:
    app = web.Application()
    with pytest.raises(ConfigError, match=r"refusing plain HTTP on 0\.0\.0\.0"):
        await serve_app(app, f"0.0.0.0:{unused_port()}", asyncio.Event(), Config())

    for listen, config, says in (
        (f"0.0.0.0:{unused_port()}", replace(Config(), listen_insecure=True), "listen_insecure = true"),
        (f"127.0.0.1:{unused_port()}", Config(), "loopback only"),
    ):
        stop = asyncio.Event()
        stop.set()
        caplog.clear()
        with caplog.at_level("WARNING", logger="cvault"):
            await serve_app(web.Application(), listen, stop, config)
        assert any("serving plain HTTP" in r.getMessage() and says in r.getMessage() for r in caplog.records)


async def test_published_url_scheme_must_match(pki: dict[str, Any]) -> None:
    listen = f"127.0.0.1:{unused_port()}"
    with pytest.raises(ConfigError, match="serves TLS but its published URL is http://"):
        await serve_app(web.Application(), listen, asyncio.Event(), _tls_config(pki), url="http://x")
    with pytest.raises(ConfigError, match="no certificate is set"):
        await serve_app(web.Application(), listen, asyncio.Event(), Config(), url="https://x")


def test_tls_makes_the_default_urls_https(pki: dict[str, Any]) -> None:
    config = load_config(
        {"CVAULT_TLS_CERT_FILE": str(pki["server"].cert_file), "CVAULT_TLS_KEY_FILE": str(pki["server"].key_file)}
    )
    assert config.authority_url == "https://127.0.0.1:8201"
    assert config.store_url == "https://127.0.0.1:8202"
    assert load_config({}).authority_url == "http://127.0.0.1:8201"
