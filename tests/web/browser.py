"""Headless Debian chromium driven by selenium with /usr/bin/chromedriver (nothing downloads).

``Browser`` wraps one driver: log in, open a page, wait for an element, screenshots at phone
(390x844) and desktop (1366x900) size into ``$STOREEDGE_SCREENSHOTS`` (default
``tests/web/screenshots/``, ignored by git).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SIZES = {"phone": (390, 844, True), "desktop": (1366, 900, False)}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1366,900"]


def screenshot_dir() -> Path:
    path = Path(os.environ.get("STOREEDGE_SCREENSHOTS")
                or Path(__file__).parent / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def available() -> str | None:
    """None when chromium and its driver are installed, else what is missing."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} missing: run scripts/setup.sh (apt chromium chromium-driver)"
    return None


class Browser:
    """One headless chromium with a fresh profile."""

    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="se-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for flag in FLAGS + [f"--user-data-dir={self.profile}"]:
            opts.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(30)
        self.base = ""

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def login(self, name: str, password: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/login")
        self.find("#name").send_keys(name)
        self.find("#password").send_keys(password)
        self.find("#login").click()
        self.wait_for(lambda: "/login" not in self.driver.current_url, 10)

    def find(self, css: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list:
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait_for(self, predicate, timeout: float, interval: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return True
            except Exception:        # element not there yet / page reloading
                pass
            time.sleep(interval)
        try:
            return bool(predicate())
        except Exception:
            return False

    def screenshots(self, name: str) -> list[Path]:
        """The current page at phone and desktop size (full page height)."""
        out = []
        for size, (w, h, mobile) in SIZES.items():
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": w, "height": h, "deviceScaleFactor": 1, "mobile": mobile})
            self.driver.refresh()
            full = self.driver.execute_script("return document.documentElement.scrollHeight")
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": w, "height": min(max(h, full), 6000),
                         "scale": 1}})
            path = screenshot_dir() / f"{name}-{size}.png"
            import base64
            path.write_bytes(base64.b64decode(shot["data"]))
            out.append(path)
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return out

    def cookie(self, name: str) -> str | None:
        c = self.driver.get_cookie(name)
        return c["value"] if c else None

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
