"""Open an HTML file in headless Chromium and report what a reader would see: whether every image
decoded, which console errors the page raised, and a full-page screenshot.

Chromium is driven through the Chrome DevTools Protocol over `--remote-debugging-pipe` (JSON
messages separated by NUL bytes on file descriptors 3 and 4), so only the standard library is
needed: no websocket client, no network port. Every wait is bounded by a timeout, and the browser's
whole process group is killed when the check ends.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "apt-get install chromium"
TIMEOUT_S = 120.0  # for the whole check: start, load, screenshot (about 2 s on an idle machine; generous under load)
WINDOW_WIDTH, WINDOW_HEIGHT = 1280, 2000

# In the page: every <img> as [complete, naturalWidth] once the load event has fired.
_IMAGES_EXPRESSION = "JSON.stringify(Array.from(document.images).map(i => [i.complete, i.naturalWidth]))"


@dataclass
class PageCheck:
    """What Chromium saw: each image as (complete, natural width in px), console errors, screenshot."""

    images: list[tuple[bool, int]]
    console_errors: list[str]
    screenshot: pathlib.Path

    @property
    def broken_images(self) -> list[int]:
        """Indexes of the images that did not load or decode (natural width 0)."""
        return [index for index, (complete, width) in enumerate(self.images) if not complete or width <= 0]


@dataclass
class _DevToolsPipe:
    """A CDP connection over the two pipes of a Chromium started with --remote-debugging-pipe."""

    process: subprocess.Popen
    to_browser: int
    from_browser: int
    deadline: float
    events: list[dict] = field(default_factory=list)
    _buffer: bytes = b""
    _next_id: int = 0

    def send(self, method: str, params: dict | None = None, session_id: str | None = None) -> dict:
        """Send one command and wait for its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.to_browser, data) :]
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for_event(self, method: str, session_id: str) -> dict:
        """The first event `method` of the session (already received, or the next to arrive)."""
        index = 0
        while True:
            for event in self.events[index:]:
                if event.get("method") == method and event.get("sessionId") == session_id:
                    return event
            index = len(self.events)
            self.events.append(self._read_message())

    def drain(self, seconds: float) -> None:
        """Keep the events that arrive within `seconds` (late console messages)."""
        until = min(time.monotonic() + seconds, self.deadline)
        while time.monotonic() < until:
            ready, _, _ = select.select([self.from_browser], [], [], max(0.0, until - time.monotonic()))
            if not ready:
                return
            self.events.append(self._read_message())

    def _read_message(self) -> dict:
        """The next NUL-terminated JSON message from the browser, within the deadline."""
        while b"\0" not in self._buffer:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"Chromium did not answer within {TIMEOUT_S:.0f} s")
            ready, _, _ = select.select([self.from_browser], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the DevTools pipe (exit status {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)


def chromium_available() -> bool:
    """Whether the Chromium binary these checks use is installed."""
    return os.access(CHROMIUM, os.X_OK)


def render_page(html_path: pathlib.Path, screenshot_path: pathlib.Path, timeout_s: float = TIMEOUT_S) -> PageCheck:
    """Load `html_path` in headless Chromium (1280 px wide), write a full-page PNG screenshot to
    `screenshot_path`, and return the state of every image and the console errors of the page."""
    html_url = pathlib.Path(html_path).resolve().as_uri()
    screenshot_path = pathlib.Path(screenshot_path)
    with tempfile.TemporaryDirectory(prefix="drol-diag-chromium-") as profile_dir:
        stderr_path = pathlib.Path(profile_dir) / "chromium-stderr.log"
        process, to_browser, from_browser = _start_chromium(pathlib.Path(profile_dir) / "profile", stderr_path)
        try:
            pipe = _DevToolsPipe(process, to_browser, from_browser, deadline=time.monotonic() + timeout_s)
            try:
                return _check_page(pipe, html_url, screenshot_path)
            except (TimeoutError, RuntimeError) as error:
                log_tail = stderr_path.read_text(errors="replace")[-2000:] if stderr_path.exists() else ""
                raise RuntimeError(f"{error}\nChromium stderr (tail):\n{log_tail}") from error
        finally:
            _stop_chromium(process, to_browser, from_browser)
            shutil.rmtree(profile_dir, ignore_errors=True)


def _start_chromium(profile_dir: pathlib.Path, stderr_path: pathlib.Path) -> tuple[subprocess.Popen, int, int]:
    """Start headless Chromium in its own process group, with the DevTools pipe on fds 3 and 4.

    Returns the process, the fd to write commands to and the fd to read replies from.
    """
    command_read, command_write = os.pipe()  # we write commands; Chromium reads them on fd 3
    reply_read, reply_write = os.pipe()  # Chromium writes replies on fd 4; we read them

    def map_pipes_to_fds_3_and_4() -> None:  # runs in the child, before exec
        command_end, reply_end = os.dup(command_read), os.dup(reply_write)  # out of the way of 3 and 4
        os.dup2(command_end, 3)
        os.dup2(reply_end, 4)

    arguments = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={profile_dir}",
        f"--window-size={WINDOW_WIDTH},{WINDOW_HEIGHT}",
        "--remote-debugging-pipe",
        "about:blank",
    ]
    with open(stderr_path, "wb") as stderr_file:
        process = subprocess.Popen(
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            close_fds=False,  # keeps the inheritable fds 3 and 4; the pipes' own fds are non-inheritable
            preexec_fn=map_pipes_to_fds_3_and_4,
            start_new_session=True,
        )
    os.close(command_read)
    os.close(reply_write)
    return process, command_write, reply_read


def _stop_chromium(process: subprocess.Popen, to_browser: int, from_browser: int) -> None:
    """Close the pipes and kill the browser's process group (its renderers included)."""
    for fd in (to_browser, from_browser):
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the group Chromium leads (start_new_session)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _check_page(pipe: _DevToolsPipe, html_url: str, screenshot_path: pathlib.Path) -> PageCheck:
    """Open a tab, load the page, read its images and console errors, take the screenshot."""
    target = pipe.send("Target.createTarget", {"url": "about:blank"})
    session_id = pipe.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        pipe.send(f"{domain}.enable", session_id=session_id)
    pipe.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": WINDOW_WIDTH, "height": WINDOW_HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        session_id=session_id,
    )
    pipe.events.clear()  # anything from about:blank is not the page's
    navigation = pipe.send("Page.navigate", {"url": html_url}, session_id=session_id)
    if navigation.get("errorText"):
        raise RuntimeError(f"Chromium could not open {html_url}: {navigation['errorText']}")
    pipe.wait_for_event("Page.loadEventFired", session_id)
    pipe.drain(0.2)

    evaluation = pipe.send(
        "Runtime.evaluate", {"expression": _IMAGES_EXPRESSION, "returnByValue": True}, session_id=session_id
    )
    images = [(bool(complete), int(width)) for complete, width in json.loads(evaluation["result"]["value"])]

    metrics = pipe.send("Page.getLayoutMetrics", session_id=session_id)
    content = metrics.get("cssContentSize") or metrics["contentSize"]
    clip = {"x": 0, "y": 0, "width": max(1, content["width"]), "height": max(1, content["height"]), "scale": 1}
    shot = pipe.send(
        "Page.captureScreenshot",
        {"format": "png", "clip": clip, "captureBeyondViewport": True},
        session_id=session_id,
    )
    screenshot_path.write_bytes(base64.b64decode(shot["data"]))
    pipe.drain(0.1)
    return PageCheck(images=images, console_errors=_console_errors(pipe.events, session_id), screenshot=screenshot_path)


def _console_errors(events: list[dict], session_id: str) -> list[str]:
    """Error-level console calls, log entries and uncaught exceptions of the page, as text."""
    errors = []
    for event in events:
        if event.get("sessionId") != session_id:
            continue
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            values = [str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])]
            errors.append("console." + params["type"] + ": " + " ".join(values))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description") or details.get("text", "")
            errors.append(f"exception: {description}")
    return errors
