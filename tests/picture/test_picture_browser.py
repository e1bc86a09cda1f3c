"""The HTML picture in a real browser: headless Chromium driven over the DevTools protocol.

Chromium runs with ``--remote-debugging-pipe``: the protocol's JSON messages,
each ended by a NUL byte, go in on its fd 3 and come out on its fd 4, so no port
is opened and no extra package is needed. Skipped (with the reason) only when no
Chromium is installed; CI installs Debian's ``chromium``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import weighttie
from support import REPO, zoo
from weighttie.picture import to_html
from weighttie.report import Report

DOCS_PICTURE = REPO / "docs" / "picture.png"
VIEWPORT = (1100, 820)
SCREENSHOT = (1100, 1420)  # the whole example graph fits
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


# Runs Chromium with our pipe ends on the fds it reads (3) and writes (4). Copies are
# taken above 9 first, so moving one end onto 3 or 4 cannot overwrite the other, and
# dup2 always makes a new, inheritable descriptor.
_ON_FDS_3_AND_4 = """
import fcntl, os, sys
into, out = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.dup2(into, 3)
os.dup2(out, 4)
os.execv(sys.argv[3], sys.argv[3:])
"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Chromium:
    """One headless Chromium and one page, spoken to over the DevTools protocol on a pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        into_r, self._into = os.pipe()
        self._out, out_w = os.pipe()
        command = [
            sys.executable,
            "-c",
            _ON_FDS_3_AND_4,
            str(into_r),
            str(out_w),
            executable,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            command,
            pass_fds=(into_r, out_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(into_r)
        os.close(out_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            self.page(f"{domain}.enable")
        width, height = VIEWPORT
        self.page(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    # -- protocol --

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._into, data) :]

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._out], [], [], remaining)
            if ready:
                chunk = os.read(self._out, 1 << 20)
                if not chunk:
                    raise EOFError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        result: dict[str, Any] = json.loads(message)
        return result

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._send(message)
        deadline = time.monotonic() + 60
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result
            self.events.append(reply)

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self.call(method, self.session, **params)

    def wait_for(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for k, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(k)
        while True:
            event = self._receive(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    # -- page --

    def open(self, path: Path) -> None:
        """Load a file and wait for its load event; problems reported since are cleared."""
        self.events.clear()
        self.page("Page.navigate", url=path.as_uri())
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        reply = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def problems(self) -> list[str]:
        """Errors and warnings the page reported: exceptions, console, CSP and network."""
        self.evaluate("0")  # let queued events arrive
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in {
                "error",
                "warning",
                "assert",
            }:
                found.append(f"console {params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in {"error", "warning"}:
                found.append(f"log: {params['entry']}")
        return found

    def screenshot(self) -> bytes:
        return base64.b64decode(self.page("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        with contextlib.suppress(EOFError, TimeoutError, OSError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._into)
        os.close(self._out)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium installed (apt-get install chromium); CI installs it")
    chromium = Chromium(executable, tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def reports() -> dict[str, Report]:
    names = ["siamese_tower", "nested_twice", "siamese_lstm", "cloned_tower", "subclassed"]
    return {name: weighttie.analyze(zoo.ZOO[name]()) for name in names}


def _open(browser: Chromium, tmp_path: Path, report: Report, **options: Any) -> None:
    path = tmp_path / "picture.html"
    path.write_text(to_html(report, **options), encoding="utf-8")
    browser.open(path)


# The attributes that place things: what opening and closing frames may change.
SNAPSHOT = """
(function () {
  var svg = document.querySelector("svg.wt-graph"), out = [];
  ["width", "height", "viewBox"].forEach(function (a) { out.push(svg.getAttribute(a)); });
  svg.querySelectorAll("g.content, [data-b], path.e, rect.fbox, g.frame").forEach(function (e) {
    out.push([e.getAttribute("class"), e.getAttribute("transform"), e.getAttribute("d"),
              e.getAttribute("height"), e.dataset.h, e.dataset.open,
              e.parentNode.getAttribute("display")].join("|"));
  });
  svg.querySelectorAll("g.frame > g").forEach(function (e) {
    out.push("body|" + e.getAttribute("display"));
  });
  return out;
}())
"""


def test_pages_render_without_errors_and_draw_every_call(
    browser: Chromium, reports: dict[str, Report], tmp_path: Path
) -> None:
    for name, report in reports.items():
        _open(browser, tmp_path, report)
        assert browser.problems() == [], name
        assert browser.evaluate("document.querySelector('.wt').dataset.ready") == "1", name
        calls = sum(len(row.nodes or ()) for row in report.layers)
        assert browser.evaluate("document.querySelectorAll('svg g.call').length") == calls, name
        chips = sum(1 for row in report.layers if not row.nodes)  # calls unknown or none
        assert browser.evaluate("document.querySelectorAll('svg g.chip').length") == chips, name


def test_group_colours_in_the_browser_match_the_legend(
    browser: Chromium, reports: dict[str, Report], tmp_path: Path
) -> None:
    report = reports["nested_twice"]
    _open(browser, tmp_path, report)
    colours = browser.evaluate(
        """(function () {
          var found = {};
          document.querySelectorAll("ul.legend li[data-g]").forEach(function (li) {
            found[li.dataset.g] = {legend: getComputedStyle(li.querySelector("rect")).fill,
                                   layers: {}};
          });
          document.querySelectorAll("svg g.call").forEach(function (node) {
            node.querySelectorAll(":scope > rect.gbar").forEach(function (bar) {
              var layers = found[bar.dataset.g].layers;
              (layers[node.dataset.p] = layers[node.dataset.p] || []).push(
                getComputedStyle(bar).fill);
            });
          });
          return found;
        }())"""
    )
    assert sorted(colours) == [f"G{n + 1}" for n in range(len(report.groups))]
    for n, group in enumerate(report.groups):
        entry = colours[f"G{n + 1}"]
        assert sorted(entry["layers"]) == sorted(group.layers)
        for path in group.layers:
            calls = len(report.layer(path).nodes or ())
            assert entry["layers"][path] == [entry["legend"]] * calls


def test_opening_and_closing_frames_in_the_browser_matches_the_python_layout(
    browser: Chromium, reports: dict[str, Report], tmp_path: Path
) -> None:
    """The script recomputes vertical positions; it must agree with layout.geometry."""
    report = reports["nested_twice"]
    (tmp_path / "open").mkdir()
    _open(browser, tmp_path / "open", report, expanded=True)
    opened = browser.evaluate(SNAPSHOT)
    (tmp_path / "closed").mkdir()
    _open(browser, tmp_path / "closed", report, expanded=False)
    closed = browser.evaluate(SNAPSHOT)
    assert opened != closed
    browser.evaluate("document.querySelector('[data-act=open-all]').click()")
    assert browser.evaluate(SNAPSHOT) == opened
    browser.evaluate("document.querySelector('[data-act=close-all]').click()")
    assert browser.evaluate(SNAPSHOT) == closed
    titles = "document.querySelectorAll('svg text.ftitle')"
    for k in range(browser.evaluate(f"{titles}.length")):
        click = f"{titles}[{k}].dispatchEvent(new MouseEvent('click', {{bubbles: true}}))"
        browser.evaluate(click)
        assert browser.evaluate(SNAPSHOT) != closed
        browser.evaluate(click)
        assert browser.evaluate(SNAPSHOT) == closed
    assert browser.problems() == []


def _png_rows(data: bytes, limit: int) -> tuple[int, int, list[bytes]]:
    """Width, bytes per pixel and the first ``limit`` unfiltered rows of an 8-bit PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0 and colour in (0, 2, 4, 6), header
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw, stride = zlib.decompress(idat), width * bpp
    rows, previous = [], bytes(stride)
    for y in range(min(height, limit)):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        previous = line
    return width, bpp, rows


def _grey_variance(png: bytes) -> float:
    """The variance of the pixels' grey levels (0 for a blank picture)."""
    width, bpp, rows = _png_rows(png, limit=600)
    total = total_sq = count = 0
    for row in rows[::4]:  # every 4th row is plenty
        for x in range(0, width * bpp, bpp * 2):
            grey = sum(row[x : x + min(bpp, 3)]) // min(bpp, 3)
            total += grey
            total_sq += grey * grey
            count += 1
    mean = total / count
    return total_sq / count - mean * mean


def test_screenshot_is_not_blank(
    browser: Chromium, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The bundled example (`make demo`); with --update-golden it becomes docs/picture.png."""
    sys.path.insert(0, str(REPO / "examples"))
    try:
        from siamese import build_siamese
    finally:
        sys.path.pop(0)
    import keras

    keras.utils.set_random_seed(0)
    width, height = SCREENSHOT
    browser.page(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    _open(browser, tmp_path, weighttie.analyze(build_siamese()))
    assert browser.problems() == []
    png = browser.screenshot()
    browser.evaluate("document.body.replaceChildren()")
    blank = browser.screenshot()
    assert _grey_variance(blank) < 1.0
    assert _grey_variance(png) > 100
    if request.config.getoption("--update-golden"):
        DOCS_PICTURE.write_bytes(png)


def test_sorting_a_column_orders_the_rows(
    browser: Chromium, reports: dict[str, Report], tmp_path: Path
) -> None:
    _open(browser, tmp_path, reports["siamese_tower"])
    column = """(function () {
      var t = document.querySelector("table[data-table=layers]");
      return Array.prototype.map.call(t.tBodies[0].rows, function (r) {
        return [r.cells[0].textContent, Number(r.cells[3].dataset.v)];
      });
    }())"""
    before = browser.evaluate(column)
    params = "document.querySelectorAll('table[data-table=layers] th')[3]"
    browser.evaluate(f"{params}.click()")
    ascending = browser.evaluate(column)
    assert [p for _, p in ascending] == sorted(p for _, p in before)
    assert sorted(ascending) == sorted(before)
    browser.evaluate(f"{params}.click()")
    descending = browser.evaluate(column)
    assert [p for _, p in descending] == sorted((p for _, p in before), reverse=True)
    assert browser.evaluate(f"{params}.getAttribute('aria-sort')") == "descending"


def test_finding_a_layer_opens_the_frames_around_it(
    browser: Chromium, reports: dict[str, Report], tmp_path: Path
) -> None:
    _open(browser, tmp_path, reports["cloned_tower"], expanded=False)
    frame = "document.querySelector('svg g.frame[data-p=\"tower_copy\"]').dataset.open"
    assert browser.evaluate(frame) == "0"
    browser.evaluate(
        "document.querySelector('ul.findings a[data-go=\"tower_copy/tower_conv\"]').click()"
    )
    assert browser.evaluate(frame) == "1"
    assert browser.problems() == []


TIES = """Array.prototype.map.call(document.querySelectorAll("svg path.tie[data-ta]"),
  function (p) { return [p.dataset.ta, p.dataset.tb, p.getAttribute("d"),
                         p.getAttribute("display")]; })"""


def test_tie_edges_follow_frames_opening_and_closing(browser: Chromium, tmp_path: Path) -> None:
    """The script redraws tie edges as Python draws them for each state of the frames."""
    from picture.test_picture_structure import tied_model

    report = weighttie.analyze(tied_model())
    (tmp_path / "open").mkdir()
    _open(browser, tmp_path / "open", report, expanded=True)
    opened = browser.evaluate(TIES)
    (tmp_path / "closed").mkdir()
    _open(browser, tmp_path / "closed", report, expanded=False)
    closed = browser.evaluate(TIES)
    assert opened and opened != closed
    browser.evaluate("document.querySelector('[data-act=open-all]').click()")
    assert browser.evaluate(TIES) == opened
    browser.evaluate("document.querySelector('[data-act=close-all]').click()")
    assert browser.evaluate(TIES) == closed
    assert browser.problems() == []


def test_a_fold_opens_on_click_as_python_draws_it_open(browser: Chromium, tmp_path: Path) -> None:
    """Folds start closed; a click on the ×N stack opens it, and the drawing is then the
    one Python makes with everything open (the script's geometry agrees)."""
    from picture.test_picture_structure import _block_chain
    from weighttie.picture.layout import FOLD_MIN

    report = weighttie.analyze(_block_chain(FOLD_MIN + 1))
    (tmp_path / "open").mkdir()
    _open(browser, tmp_path / "open", report, expanded=True)
    opened = browser.evaluate(SNAPSHOT)
    (tmp_path / "default").mkdir()
    _open(browser, tmp_path / "default", report)
    assert browser.problems() == []
    fold = "document.querySelector('svg g.frame.fold')"
    assert browser.evaluate(f"{fold}.dataset.open") == "0"
    assert browser.evaluate(f"{fold}.dataset.fold") == str(FOLD_MIN + 1)
    closed = browser.evaluate(SNAPSHOT)
    click = "dispatchEvent(new MouseEvent('click', {bubbles: true}))"
    browser.evaluate(f"{fold}.querySelector('g.foldbox').{click}")
    assert browser.evaluate(f"{fold}.dataset.open") == "1"
    assert browser.evaluate(SNAPSHOT) == opened != closed
    visible = f"{fold}.querySelector('g.frame[data-p=\"block_1\"]').getBoundingClientRect().height"
    assert browser.evaluate(visible) > 0
    assert browser.problems() == []
