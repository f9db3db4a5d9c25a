"""cvault's tests. Importing them chooses aiohttp's pure-Python HTTP parser, as ``cvault serve`` does.

It accepts Vault's ``LIST`` method (vault/web/app_runner.py). aiohttp reads
``AIOHTTP_NO_EXTENSIONS`` once, at its first import, so nothing may import aiohttp before
``tests/conftest.py`` (whose package this is) is loaded: pyproject.toml keeps pytest's start-up clear of it.
"""

import os
import sys

if "aiohttp" in sys.modules and os.environ.get("AIOHTTP_NO_EXTENSIONS") != "1":
    raise RuntimeError("aiohttp was imported before the tests could choose its parser; see pyproject.toml")
os.environ["AIOHTTP_NO_EXTENSIONS"] = "1"
