"""A headless Chromium driven over the DevTools protocol on a pipe (standard library only), for the HTML report.

`open_page(path)` loads a local file, waits for its load event, and returns what a person and the
console would see: every console message and uncaught exception, the value of a few DOM queries,
and a PNG screenshot. Chromium is Debian's `chromium` package; tests skip when it is absent.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


@dataclass
class Page:
    console: list = field(default_factory=list)  # (level, text) of console messages, log entries, exceptions
    values: dict = field(default_factory=dict)  # expression -> its value in the page
    png: bytes = b""

    @property
    def errors(self) -> list:
        return [(level, text) for level, text in self.console if level in ("error", "exception")]


class DevTools:
    """Commands in, events and answers out: JSON messages ending in NUL on fds 3 (to chromium) and 4 (from it)."""

    def __init__(self, to_browser, from_browser, deadline: float):
        self.out, self.inp, self.deadline = to_browser, from_browser, deadline
        self.next_id, self.buffer, self.events = 0, b"", []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        while True:
            reply = self.receive()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def receive(self) -> dict:
        while b"\0" not in self.buffer:
            if time.monotonic() > self.deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.inp, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_for(self, method: str) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self.receive()
            self.events.append(event)
            if event.get("method") == method:
                return event


def open_page(path: str, queries: tuple[str, ...] = (), width: int = 1280, height: int = 1600,
              timeout: float = 60.0, full_page: bool = True) -> Page:
    """Load `path` in headless Chromium; its console, the `queries` evaluated in it (in order: one may scroll),
    and a screenshot (of the whole page, or with full_page=False of the window)."""
    to_read, to_chrome = os.pipe()  # chromium reads commands on its fd 3
    from_chrome, to_write = os.pipe()  # and writes answers on its fd 4
    profile = tempfile.mkdtemp(prefix="gradcheck-chromium-")
    command = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--remote-debugging-pipe",
               "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
               f"--window-size={width},{height}", "about:blank"]

    def pipes_on_3_and_4():  # in the child: its ends of the pipes as fds 3 and 4, and no other fd of ours
        reading, writing = os.dup(to_read), os.dup(to_write)  # lowest free fds: copied first, so the dup2s below cannot clobber a source
        os.dup2(reading, 3)
        os.dup2(writing, 4)
        os.closerange(5, 4096)

    browser = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, close_fds=False, preexec_fn=pipes_on_3_and_4)
    os.close(to_read)
    os.close(to_write)
    try:
        tools = DevTools(to_chrome, from_chrome, time.monotonic() + timeout)
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            tools.send(f"{domain}.enable", session=session)
        tools.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                          "mobile": False}, session=session)
        tools.send("Page.navigate", {"url": "file://" + os.path.abspath(path)}, session=session)
        tools.wait_for("Page.loadEventFired")
        page = Page()
        for expression in queries:
            answer = tools.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
            page.values[expression] = answer.get("result", {}).get("value")
        shot = tools.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": full_page}, session=session)
        page.png = base64.b64decode(shot["data"])
        for event in tools.events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                page.console.append((params.get("type"), text))
            elif event.get("method") == "Runtime.exceptionThrown":
                page.console.append(("exception", json.dumps(params.get("exceptionDetails", {}))[:500]))
            elif event.get("method") == "Log.entryAdded":
                entry = params.get("entry", {})
                page.console.append((entry.get("level"), f"{entry.get('source')}: {entry.get('text')}"))
        try:
            tools.send("Browser.close")
        except (EOFError, RuntimeError, TimeoutError):
            pass
        return page
    finally:
        for fd in (to_chrome, from_chrome):
            os.close(fd)
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        shutil.rmtree(profile, ignore_errors=True)
