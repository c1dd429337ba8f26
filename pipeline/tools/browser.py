"""Headless Chromium over the DevTools protocol: open a page, read its text, take a screenshot.

TensorBoard is a JavaScript app whose dashboards render inside shadow DOM,
so neither a plain HTTP fetch nor ``chromium --dump-dom`` sees their text;
reading it from the live page does. Used to check the dashboards as a user
sees them and to make the docs' screenshots. Needs Debian's ``chromium``.
"""
from __future__ import annotations

import base64
import itertools
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from typing import Iterable, Optional

import websocket

INSTALL_HINT = "apt-get install chromium"
BINARIES = ("chromium", "chromium-browser", "google-chrome")

# Every text node of the page but styles and scripts, through open shadow roots (TensorBoard's Polymer dashboards).
_DEEP_TEXT = """(() => {
  const parts = [];
  const walk = (node) => {
    if (node.nodeName === "STYLE" || node.nodeName === "SCRIPT") return;
    if (node.nodeType === Node.TEXT_NODE) parts.push(node.textContent);
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.documentElement);
  return parts.join(" ").replace(/\\s+/g, " ");
})()"""


class BrowserMissing(RuntimeError):
    pass


def find_chromium() -> Optional[str]:
    return next((path for path in map(shutil.which, BINARIES) if path), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HeadlessChromium:
    """One headless Chromium process with one page; use as a context manager."""

    def __init__(self, width: int = 1600, height: int = 1000, start_timeout: float = 30):
        binary = find_chromium()
        if binary is None:
            raise BrowserMissing(f"no Chromium found ({', '.join(BINARIES)}); install it: {INSTALL_HINT}")
        self.profile = tempfile.mkdtemp(prefix="clipflow-chromium-")
        port = free_port()
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--remote-debugging-port={port}", f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.ids = itertools.count(1)
        self.socket = websocket.create_connection(self._page_socket(port, start_timeout), timeout=60, suppress_origin=True)
        self.resize(width, height)

    def _page_socket(self, port: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserMissing(f"Chromium exited at start (status {self.process.returncode})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                    pages = [t for t in json.load(response) if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except OSError:
                pass
            time.sleep(0.2)
        raise BrowserMissing(f"Chromium's DevTools did not answer within {timeout:.0f} s")

    def call(self, method: str, **params) -> dict:
        """One DevTools command; events arriving meanwhile are dropped."""
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def resize(self, width: int, height: int) -> None:
        """The page's own size, not the window's: screenshots are exactly width x height."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def text(self) -> str:
        return self.evaluate(_DEEP_TEXT) or ""

    def wait_for_text(self, needles: Iterable[str], timeout: float = 60) -> str:
        """The page's text once it contains every needle; TimeoutError naming the missing ones otherwise."""
        needles = list(needles)
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            missing = [n for n in needles if n not in text]
            if not missing:
                return text
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never showed {missing}; it showed: {text[:2000]}")
            time.sleep(0.5)

    def screenshot(self, path: str) -> str:
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "HeadlessChromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
