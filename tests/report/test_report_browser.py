"""The page in a real browser: headless Chromium (Debian's) opens report.html from disk with
the network off, runs without a script error, asks nothing of the network, draws every chart,
zooms them together, and keeps hostile log text inert. Its screenshot is checked for content
and kept next to the test's files for a person to look at."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from report_logs import heroku_logs, incident

from support.browser import CHROMIUM, offline_args

VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (bash tests/run installs it)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=offline_args())
        try:
            yield launched
        finally:
            launched.close()


class Visit:
    """One page opened offline, with everything it said and asked for."""

    def __init__(self, browser, path: Path) -> None:
        self.context = browser.new_context(viewport=VIEWPORT, offline=True)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("dialog", self._dialog)
        self.page.goto(path.as_uri())
        self.page.wait_for_function(
            "window.dynostatReport && window.dynostatReport.firstChartsReady", timeout=60_000
        )

    def _route(self, route) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    def _console(self, message) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text}")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def close(self) -> None:
        self.context.close()


def make_report(report_command: str, directory: Path, lines: list[str]) -> Path:
    (directory / "in.log").write_text("\n".join(lines) + "\n")
    subprocess.run(
        [report_command, "in.log", "-o", "report.html", "-q"],
        cwd=directory,
        check=True,
        timeout=120,
    )
    return directory / "report.html"


def picture_stats(visit: Visit, png: bytes) -> dict:
    """Counts in the screenshot itself (decoded by the browser): how much of it is not
    background, and how many colours it has."""
    return visit.page.evaluate(
        """async (data) => {
            const image = new Image();
            image.src = 'data:image/png;base64,' + data;
            await image.decode();
            const canvas = document.createElement('canvas');
            canvas.width = image.width;
            canvas.height = image.height;
            const context = canvas.getContext('2d');
            context.drawImage(image, 0, 0);
            const pixels = context.getImageData(0, 0, image.width, image.height).data;
            const background = pixels.slice(0, 4).join(',');
            let different = 0;
            const colours = new Set();
            for (let i = 0; i < pixels.length; i += 4 * 7) {
                const key = pixels[i] + ',' + pixels[i + 1] + ',' + pixels[i + 2];
                colours.add(key);
                if (key + ',' + pixels[i + 3] !== background) different += 1;
            }
            return {width: image.width, height: image.height,
                    share: different / (pixels.length / (4 * 7)), colours: colours.size};
        }""",
        base64.b64encode(png).decode(),
    )


@pytest.fixture(scope="module")
def incident_report(report_command, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("browser-incident")
    return make_report(report_command, directory, heroku_logs(incident().records))


def test_the_page_opens_offline_without_errors_or_requests(browser, incident_report):
    visit = Visit(browser, incident_report)
    try:
        state = visit.page.evaluate("window.dynostatReport")
        assert state["overviewReady"] is True
        assert state["errors"] == []
        assert state["rendered"] >= 2  # the charts on screen at once
        drawn = visit.page.evaluate("window.dynostatReport.renderAll()")
        assert drawn == 3
        assert visit.page.locator(".js-plotly-plot").count() == 4  # overview and 3 dynos
        lines = visit.page.evaluate(
            "Array.from(document.querySelectorAll('.scatterlayer path.js-line'))"
            ".filter((p) => (p.getAttribute('d') || '').length > 100).length"
        )
        assert lines >= 20
        heat = visit.page.locator("#overview-chart .heatmaplayer image")
        assert heat.count() == 1
        assert visit.errors == []
        assert visit.dialogs == []
        assert [url for url in visit.requests if not url.startswith("file:")] == []
        assert visit.requests == [incident_report.as_uri()]
    finally:
        visit.close()


def test_the_screenshot_is_a_picture_worth_pasting(browser, incident_report):
    visit = Visit(browser, incident_report)
    try:
        png = visit.page.screenshot()
        shot = incident_report.parent / "report.png"
        shot.write_bytes(png)
        stats = picture_stats(visit, png)
        assert (stats["width"], stats["height"]) == (VIEWPORT["width"], VIEWPORT["height"])
        assert stats["share"] > 0.35  # cards, table, heat map and chart, not a blank page
        assert stats["colours"] > 200
        # What the top of the page says, as a person reads it.
        text = visit.page.inner_text("body")
        assert "web.1 reached 256 of 256 tasks (100% of the limit)" in text
        assert "The agent named pid 8 leaky_worker" in text
        element = visit.page.locator("#dyno-1")
        element.scroll_into_view_if_needed()
        visit.page.wait_for_function("window.dynostatReport.rendered >= 2")
        (incident_report.parent / "web.1.png").write_bytes(element.screenshot())
    finally:
        visit.close()


def test_zooming_one_chart_zooms_them_all(browser, incident_report):
    visit = Visit(browser, incident_report)
    try:
        visit.page.evaluate("window.dynostatReport.renderAll()")
        before, target, after = visit.page.evaluate(
            """async () => {
                const charts = Array.from(document.querySelectorAll('.js-plotly-plot'));
                const times = (chart) =>
                    chart.layout.xaxis.range.map((value) => new Date(value).getTime());
                const before = charts.map(times);
                const [start, end] = before[2];
                const target = [start + (end - start) / 2, end];
                await Plotly.relayout(charts[2], {'xaxis.range': target});
                // Charts off screen follow when they come into view.
                for (const chart of charts) {
                    chart.scrollIntoView();
                    await new Promise((resolve) => setTimeout(resolve, 300));
                }
                return [before, target, charts.map(times)];
            }"""
        )
        assert len(after) == 4
        # Every chart (the overview too) shows the second half of the same span it showed.
        for old, new in zip(before, after):
            assert old == pytest.approx(before[0], abs=1000)
            assert new == pytest.approx(target, abs=1000)
        assert visit.errors == []
    finally:
        visit.close()


def test_hostile_log_text_stays_text_in_the_browser(browser, report_command, tmp_path):
    hostile = '</script><script>alert(1)</script><img src=x onerror="alert(2)"><b>b</b>'
    lines = [
        "2026-11-27T05:27:22Z app[web.1]: source=web.1 dyno=x sample#dynostat.tasks=250 "
        "sample#dynostat.tasks_limit=256",
        "2026-11-27T05:27:23Z app[web.1]: source=web.1 dyno=x at=warn event=tasks_near_limit "
        f'pid=8 comm="{hostile.replace(chr(34), chr(92) + chr(34))}"',
        f'2026-11-27T05:27:24Z heroku[router]: at=error code=H12 path="{hostile}" '
        "dyno=web.1 service=30000ms status=503",
        f"2026-11-27T05:27:25Z app[{hostile[:8]}]: source=x dyno=y sample#dynostat.tasks=1",
        # A dyno name without spaces can still be markup: it becomes an axis label.
        "2026-11-27T05:27:26Z app[web.2]: source=<img/src=x/onerror=alert(3)><b>bold</b> "
        "dyno=y sample#dynostat.tasks=2",
        "2026-11-27T05:27:27Z heroku[<img/src=x/onerror=alert(3)><b>bold</b>]: State changed "
        "from up to crashed",
    ]
    report = make_report(report_command, tmp_path, lines)
    visit = Visit(browser, report)
    try:
        visit.page.evaluate("window.dynostatReport.renderAll()")
        # Hover every event marker, so plotly.js renders the log lines as hover text.
        shown = visit.page.evaluate(
            """async () => {
                const texts = [];
                for (const chart of document.querySelectorAll('.chart.js-plotly-plot')) {
                    for (const [number, trace] of chart.data.entries()) {
                        if (trace.mode !== 'markers') continue;
                        Plotly.Fx.hover(chart, [{curveNumber: number, pointNumber: 0}]);
                        await new Promise((resolve) => setTimeout(resolve, 50));
                        const layer = chart.querySelector('.hoverlayer');
                        texts.push(layer ? layer.textContent : '');
                    }
                }
                return texts;
            }"""
        )
        # Shown as written: plotly.js took neither <b> for bold nor anything for markup.
        hovers = " ".join(shown)
        assert "</script><script>alert(1)</script><img" in hovers
        assert "<b>b</b>" in hovers
        assert visit.dialogs == []
        assert visit.page.locator("img[src='x']").count() == 0
        assert hostile in visit.page.inner_text("table.summary")
        ticks = visit.page.locator("#overview-chart .ytick text").all_text_contents()
        assert "<img/src=x/onerror=alert(3)><b>bold</b>" in ticks
        assert visit.page.locator("#overview-chart b").count() == 0
        assert visit.errors == []
        assert [url for url in visit.requests if not url.startswith("file:")] == []
    finally:
        visit.close()
