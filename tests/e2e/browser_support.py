"""A real headless Chromium for the page tests (the cabinet, the console), and where their
screenshots go.

Chromium and its driver are Debian's packages (chromium, chromium-driver), driven with
selenium. Where they are missing they are installed with apt-get if possible (CI runs as
root); a test skips, saying why, only where that is impossible. Screenshots are written to
.local/artifacts/screenshots/<broker>/ (SAGA_TEST_ARTIFACTS overrides the folder), one PNG
per page a test walks through, and kept for the reader of a CI run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import session_broker_kind
from tools import REPO_ROOT
from tools.infra.apt import apt_install

PACKAGES = ("chromium", "chromium-driver")
# Flags that work in containers and on CI machines without a display, GPU or network.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
)


def _binaries() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def chromium(profile: Path) -> Iterator[Any]:
    """A headless Chromium driven by selenium, until the generator is closed."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    found = _binaries()
    if found is None:
        why = apt_install(*PACKAGES)
        found = _binaries()
        if found is None:
            pytest.skip(f"Chromium and chromedriver are not installed and could not be: "
                        f"{why or 'the packages put no chromium/chromedriver on PATH'}")
    binary, chromedriver = found
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # An explicit driver path: selenium must not try to download one (no network here).
    service = webdriver.ChromeService(executable_path=chromedriver)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def artifacts_dir() -> Path:
    given = os.environ.get("SAGA_TEST_ARTIFACTS")
    base = Path(given) if given else REPO_ROOT / ".local" / "artifacts"
    folder = base / "screenshots" / session_broker_kind()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(driver: Any, name: str, width: int = 1280) -> Path:
    """The page as it is now, `width` pixels wide, as <artifacts>/<name>.png (the whole
    page's height)."""
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(900, min(int(height) + 120, 4000)))
    shot = artifacts_dir() / f"{name}.png"
    try:
        assert driver.save_screenshot(str(shot))
    finally:
        driver.set_window_size(1280, 900)
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    print(f"screenshot: {shot}")
    return shot
