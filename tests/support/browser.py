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
    """``$CVAULT_TEST_SCREENSHOT_DIR`` (e.g. ``docs/img``, to refresh the docs' pictures), else a temporary one."""
    wanted = os.environ.get("CVAULT_TEST_SCREENSHOT_DIR")
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


# Every element with its own text: its colour and the first opaque background behind it, as the browser computes them.
_TEXT_COLOURS_JS = """
const out = [];
const opaque = (el) => {
  for (let e = el; e; e = e.parentElement) {
    const bg = getComputedStyle(e).backgroundColor;
    if (bg && !bg.startsWith('rgba(0, 0, 0, 0)') && bg !== 'transparent') return bg;
  }
  return 'rgb(255, 255, 255)';
};
for (const el of document.querySelectorAll('body *')) {
  if (el.closest('svg')) continue;
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  const style = getComputedStyle(el);
  if (!own || style.visibility === 'hidden' || el.getClientRects().length === 0) continue;
  out.push([el.tagName, el.textContent.trim().slice(0, 40), style.color, opaque(el), parseFloat(style.fontSize),
            style.fontWeight]);
}
return out;
"""


def _luminance(css: str) -> float:
    parts = [float(p) for p in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
    channels = [c / 255 for c in parts]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two ``rgb(...)`` colours."""
    a, b = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def low_contrast_text(driver: webdriver.Chrome) -> list[tuple[str, str, float]]:
    """Text below WCAG AA: 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold)."""
    found = []
    for tag, text, colour, background, size, weight in driver.execute_script(_TEXT_COLOURS_JS):
        large = size >= 24 or (size >= 18.66 and int(weight) >= 700)
        ratio = contrast(colour, background)
        if ratio < (3.0 if large else 4.5):
            found.append((tag, text, round(ratio, 2)))
    return found
