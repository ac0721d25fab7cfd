"""Browser tests: Playwright driving Debian's chromium (never a browser Playwright downloads).
`make test` installs the chromium package when /usr/bin/chromium is missing."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run make test (it installs Debian's chromium package) or "
                    "apt-get install -y chromium", pytrace=False)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        # --no-sandbox: containers and CI often run as root, where chromium's sandbox cannot start.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()
