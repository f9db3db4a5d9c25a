"""A real OIDC issuer for the workload identity tests: discovery and JWKS over TLS, keys from ``cryptography``.

``async with running_issuer(tmp_path) as issuer:`` serves
``https://127.0.0.1:<port>/.well-known/openid-configuration`` and ``/jwks`` with a
certificate of a test CA (``issuer.ca_file``), signs JWTs with its current keys
(PyJWT), rotates them (``issuer.rotate()``), counts the key set fetches
(``issuer.jwks_fetches``) and can go down (``issuer.down = True``). The token
shapes follow what the platforms document: Kubernetes projected service account
tokens and GitHub Actions ID tokens.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from vault.crypto.local_ca import LocalCA

__all__ = ["OidcIssuer", "running_issuer"]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_ALG = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}


def new_key(alg: str) -> PrivateKey:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def public_jwk(kid: str, alg: str, key: PrivateKey) -> dict[str, Any]:
    jwk: dict[str, Any] = _ALG[alg].to_jwk(key.public_key(), as_dict=True)  # type: ignore[attr-defined]
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


@dataclass
class OidcIssuer:
    url: str
    ca_file: Path
    keys: dict[str, tuple[str, PrivateKey]] = field(default_factory=dict)  # kid -> (alg, key)
    current: str = ""
    jwks_fetches: int = 0
    discovery_fetches: int = 0
    down: bool = False
    chunked: bool = False  # serve the key set in two writes, the second a moment later

    def add_key(self, alg: str = "RS256") -> str:
        kid = uuid.uuid4().hex[:16]
        self.keys[kid] = (alg, new_key(alg))
        self.current = kid
        return kid

    def rotate(self, alg: str = "RS256") -> str:
        """A new signing key; the old ones are no longer published."""
        old = set(self.keys)
        kid = self.add_key(alg)
        for k in old:
            del self.keys[k]
        return kid

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(kid, alg, key) for kid, (alg, key) in self.keys.items()]}

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, headers: dict[str, Any] | None = None) -> str:
        kid = kid or self.current
        alg, key = self.keys[kid]
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, **(headers or {})})

    def claims(self, audience: str, subject: str, *, lifetime: int = 600, now: float | None = None) -> dict[str, Any]:
        issued = int(time.time() if now is None else now)
        return {
            "iss": self.url,
            "sub": subject,
            "aud": audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime,
            "jti": str(uuid.uuid4()),
        }

    def kubernetes_token(
        self, audience: str, *, namespace: str = "prod", account: str = "api", lifetime: int = 600, **extra: Any
    ) -> str:
        """A projected service account token, as the kubelet mounts it (claims as Kubernetes documents them)."""
        claims = self.claims(audience, f"system:serviceaccount:{namespace}:{account}", lifetime=lifetime)
        claims["aud"] = [audience]
        claims["kubernetes.io"] = {
            "namespace": namespace,
            "pod": {"name": f"{account}-7c9f8d-x2x4z", "uid": str(uuid.uuid4())},
            "serviceaccount": {"name": account, "uid": str(uuid.uuid4())},
        }
        claims.pop("jti")  # the kubelet's tokens carry none before Kubernetes 1.29
        claims.update(extra)
        return self.sign(claims)

    def github_token(
        self, audience: str, *, repository: str = "acme/api", ref: str = "refs/heads/main", **extra: Any
    ) -> str:
        """A GitHub Actions ID token (claims as GitHub documents them)."""
        owner = repository.split("/")[0]
        claims = self.claims(audience, f"repo:{repository}:ref:{ref}", lifetime=300)
        claims.update(
            {
                "ref": ref,
                "ref_type": "branch",
                "repository": repository,
                "repository_owner": owner,
                "repository_id": "123456",
                "run_id": "987654321",
                "run_attempt": "1",
                "actor": "octocat",
                "workflow": "deploy",
                "event_name": "push",
                "job_workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
                "environment": "production",
            }
        )
        claims.update(extra)
        return self.sign(claims)


@asynccontextmanager
async def running_issuer(directory: Path, *, alg: str = "RS256") -> AsyncIterator[OidcIssuer]:
    ca = LocalCA.create("test OIDC CA")
    ca_file = directory / "oidc-ca.pem"
    key_file = directory / "oidc-ca-key.pem"
    ca.save(ca_file, key_file)
    cert = ca.issue(directory, "oidc", ["127.0.0.1"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.cert_file, cert.key_file)
    issuer = OidcIssuer("", ca_file)
    issuer.add_key(alg)

    async def discovery(request: web.Request) -> web.Response:
        if issuer.down:
            return web.Response(status=503)
        issuer.discovery_fetches += 1
        return web.json_response({"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"})

    async def jwks(request: web.Request) -> web.StreamResponse:
        if issuer.down:
            return web.Response(status=503)
        issuer.jwks_fetches += 1
        if not issuer.chunked:
            return web.json_response(issuer.jwks())
        body = json.dumps(issuer.jwks()).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        await asyncio.sleep(0.05)  # so the client sees the first half arrive alone
        await response.write(body[len(body) // 2 :])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    issuer.url = f"https://127.0.0.1:{port}"
    try:
        yield issuer
    finally:
        await runner.cleanup()
