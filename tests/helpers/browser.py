"""Headless Debian chromium driven by selenium with /usr/bin/chromedriver (nothing downloads).

``Browser`` wraps one driver: log in, open a page, wait for an element, screenshots at phone
(390x844) and desktop (1366x900) size into ``$STOREEDGE_SCREENSHOTS`` (default
``tests/server/web/screenshots/``, ignored by git).
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
                or Path(__file__).resolve().parents[1] / "server" / "web" / "screenshots")
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
        from selenium.webdriver.common.keys import Keys
        self.find("#name").send_keys(name + Keys.TAB)        # keyboard only: tab, type, enter
        self.driver.switch_to.active_element.send_keys(password + Keys.ENTER)
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

    def contrast_failures(self) -> list[str]:
        """WCAG AA text contrast of every visible text element of the current page:
        ``"text (ratio < needed)"`` for each failure (4.5:1, or 3:1 for large text)."""
        return self.driver.execute_script(_CONTRAST_JS)

    def cookie(self, name: str) -> str | None:
        c = self.driver.get_cookie(name)
        return c["value"] if c else None

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


_CONTRAST_JS = r"""
function rgb(c) { var m = c.match(/[\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; }
function lum(c) {
  var a = c.slice(0, 3).map(function (v) { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2];
}
function background(el) {
  for (; el; el = el.parentElement) {
    var c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length < 4 || c[3] > 0.5) { return c; }
  }
  return [255, 255, 255];
}
var out = [];
document.querySelectorAll("body *").forEach(function (el) {
  var own = Array.prototype.some.call(el.childNodes, function (n) {
    return n.nodeType === 3 && n.textContent.trim(); });
  if (!own || !el.offsetParent && el.tagName !== "BODY") { return; }
  var st = getComputedStyle(el);
  if (st.visibility === "hidden" || parseFloat(st.left) < -1000) { return; }
  var l1 = lum(rgb(st.color)), l2 = lum(background(el));
  var ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  var size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight, 10) >= 700;
  var need = (size >= 24 || (size >= 18.66 && bold)) ? 3 : 4.5;
  if (ratio < need) { out.push(el.textContent.trim().slice(0, 40) + " (" +
                               ratio.toFixed(2) + " < " + need + ")"); }
});
return out;
"""
