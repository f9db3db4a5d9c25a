"""Print the authority's org public key for the store, pinning it at first start (docker-entrypoint.sh).

The store seals every ticket to this key, so it must be the authority's and must not
change behind the store's back. At first start it is fetched from
``$AUTHORITY_KEYS_URL`` (``<authority>/.well-known/cvault/keys``, over TLS verified
with ``$CVAULT_CACERT``) and written to ``$PIN_FILE``; later starts use the pinned
key, and say so loudly if the authority now serves another (to adopt it, delete
the pin file and restart the store). Standard library only: it runs before cvault.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

WAIT_SECONDS = 60.0


def _fetch(url: str, cafile: str | None, timeout: float) -> str:
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https://") else None
    with urllib.request.urlopen(url, timeout=timeout, context=context) as reply:  # noqa: S310 (URL from config)
        keys = json.loads(reply.read(64 * 1024))
    return _valid(str(keys["org"]["public_key"]), url)


def _valid(text: str, where: str) -> str:
    text = text.strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SystemExit(f"pin-authority-key: {where} holds no 32-byte base64 key")
    return text


def main() -> int:
    url = os.environ.get("AUTHORITY_KEYS_URL", "").strip()
    pin = Path(os.environ.get("PIN_FILE", "/var/lib/cvault/authority-org-key"))
    cafile = os.environ.get("CVAULT_CACERT", "").strip() or None
    if pin.exists():
        pinned = _valid(pin.read_text(encoding="ascii"), str(pin))
        if url:
            try:
                current = _fetch(url, cafile, timeout=3)
            except (OSError, ValueError, KeyError) as exc:
                print(f"pin-authority-key: could not compare with {url}: {type(exc).__name__}", file=sys.stderr)
            else:
                if current != pinned:
                    print(
                        f"pin-authority-key: WARNING: {url} now serves another org key than the one pinned in "
                        f"{pin}; keeping the pinned key. Delete {pin} and restart the store to adopt the new one.",
                        file=sys.stderr,
                    )
        print(pinned)
        return 0
    if not url:
        raise SystemExit("pin-authority-key: set AUTHORITY_KEYS_URL (or CVAULT_AUTHORITY_ORG_PUBLIC_KEY)")
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            key = _fetch(url, cafile, timeout=3)
            break
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLError):
                raise SystemExit(f"pin-authority-key: {url}: TLS failed ({exc.reason}); check CVAULT_CACERT") from None
            if time.monotonic() > deadline:
                raise SystemExit(f"pin-authority-key: {url} did not answer: {exc.reason}") from None
            time.sleep(1)
        except (OSError, ValueError, KeyError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"pin-authority-key: {url} did not answer: {type(exc).__name__}") from None
            time.sleep(1)
    pin.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(pin, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    print(f"pin-authority-key: pinned the authority's org key from {url} in {pin}", file=sys.stderr)
    print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
