"""A real headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven through Selenium.

The driver is ``/usr/bin/chromedriver``, named explicitly so Selenium never tries
to download one; a missing browser or driver fails the test (``scripts/check``
installs both through ``scripts/apt-packages.txt``). Selenium's calls block, and
the console under test runs on the test's event loop, so every call goes
through a worker thread (:meth:`Browser.run`).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

__all__ = ["CHROMEDRIVER", "CHROMIUM", "Browser", "chromium", "screenshot_dir"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
T = TypeVar("T")


def screenshot_dir() -> Path:
    """``$CVAULT_SCREENSHOT_DIR`` (e.g. ``docs/img``, to refresh the docs' pictures), else a temporary directory."""
    wanted = os.environ.get("CVAULT_SCREENSHOT_DIR")
    path = Path(wanted) if wanted else Path(tempfile.gettempdir()) / "cvault-console-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Browser:
    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver

    async def run(self, steps: Callable[[webdriver.Chrome], T]) -> T:
        return await asyncio.to_thread(steps, self.driver)


def _start() -> webdriver.Chrome:
    for path in (CHROMIUM, CHROMEDRIVER):
        assert path.exists(), f"{path} is missing: run scripts/install-test-deps as root (chromium, chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # the test container runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1440,1000",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    driver = await asyncio.to_thread(_start)
    try:
        yield Browser(driver)
    finally:
        await asyncio.to_thread(driver.quit)
