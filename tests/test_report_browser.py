"""report.html in a real browser: headless Chromium loads the file, runs its inline script, and we
read back the DOM it dumps (and a screenshot)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from test_report_html import EVIL_ACTION, Dom, make_report

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome")
                 if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium "
                                                         "(Debian/Ubuntu) or put chromium/google-chrome on PATH")


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           f"--user-data-dir={tmp / 'profile'}", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    return tmp, make_report(tmp)


def dom_after_js(page, query: str | None = None):
    tmp, path = page
    url = path.as_uri() + (f"#q={quote(query)}" if query is not None else "")
    return Dom(chromium(tmp, "--dump-dom", url).stdout).root


def visible_runs(dom):
    return [r for r in dom.find_all("details", cls="run") if "hidden" not in r.attrs]


def test_the_page_renders_with_its_plots_and_tables(page):
    dom = dom_after_js(page)
    assert dom.find("title").text() == "pytest-mlgym report"  # no agent text ran as a script
    for kind in ("best_attempt", "best_submission"):
        assert dom.find("img", id=f"profile-{kind}").attrs["src"].startswith("data:image/png;base64,")
    rows = dom.find("table", id="aup-table").find_all("tr")
    assert len(rows) == 4  # the header, two agents and the recorded baseline
    total = len(dom.find_all("li", cls="step"))
    assert total == 41 and dom.find("span", id="qcount").text() == f"{total} steps"  # written by the page's script
    assert len(visible_runs(dom)) == 12


def test_the_search_box_filters_trajectories(page):
    dom = dom_after_js(page, "pwned")  # only in one action: alpha / meh / seed 1, step 1
    runs = visible_runs(dom)
    assert [(r.attrs["data-task"], r.attrs["data-agent"], r.attrs["data-seed"]) for r in runs] == [("alpha", "meh", "1")]
    assert "open" in runs[0].attrs
    steps = [s for s in runs[0].find_all("li", cls="step") if "hidden" not in s.attrs]
    assert [s.attrs["data-step"] for s in steps] == ["1"]
    assert steps[0].find("pre", cls="action").text() == EVIL_ACTION  # shown as text
    assert dom.find("span", id="qcount").text() == "1 of 41 steps in 1 runs match"
    assert dom.find("input", id="q").attrs.get("value", "") in ("", "pwned")  # the property, not the attribute
    # a run's heading matches too: every step of the matching runs stays
    dom = dom_after_js(page, "gamma / meh")
    runs = visible_runs(dom)
    assert sorted(r.attrs["data-seed"] for r in runs) == ["0", "1"]
    assert all("hidden" not in s.attrs for r in runs for s in r.find_all("li", cls="step"))
    # nothing matches: every run hides
    dom = dom_after_js(page, "no such text anywhere")
    assert visible_runs(dom) == [] and dom.find("span", id="qcount").text().startswith("0 of 41 steps")


def test_screenshot(page):
    from PIL import Image

    tmp, path = page
    shot = tmp / "shot.png"
    chromium(tmp, f"--screenshot={shot}", "--window-size=1280,2000", path.as_uri())
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 2000)
    colours = img.resize((320, 500)).getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # tables and plots, not a blank page


def test_the_aggregate_statistics_and_the_aup_at_j_plot_are_shown(page):
    dom = dom_after_js(page)
    section = dom.find("section", id="stats")
    assert "hidden" not in section.attrs
    rows = section.find("table", id="stats-agents").find_all("tr")
    assert len(rows) == 3  # the header and two agents, each with its interval
    assert all("[" in td.text() for td in rows[1].find_all("td")[2:])
    assert section.find("img", id="aup-at-plot").attrs["src"].startswith("data:image/png;base64,")
    import numpy as np
    from PIL import Image

    tmp, path = page
    shot = tmp / "stats.png"
    chromium(tmp, f"--screenshot={shot}", "--window-size=1280,1200", path.as_uri() + "#stats")
    px = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    blue = int((np.abs(px - [31, 119, 180]).max(axis=-1) < 30).sum())
    assert blue > 200, blue  # the first agent's line and band of the AUP@j plot (plots.colours)


def test_the_cost_plot_is_visible(page):
    """The cost-effectiveness plot loads as an image with a size and lies within the page's layout."""
    from PIL import Image

    tmp, path = page
    dom = dom_after_js(page)
    img = dom.find("img", id="cost-plot")
    assert img.attrs["src"].startswith("data:image/png;base64,") and "hidden" not in img.attrs
    # the browser decoded it (a broken image has no natural width) and laid it out at a size
    probe = tmp / "cost.html"
    probe.write_text(path.read_text(encoding="utf-8").replace(
        "</body>", "<script>document.title = [document.getElementById('cost-plot').naturalWidth,"
                   "document.getElementById('cost-plot').getBoundingClientRect().height].join(' ');</script></body>"),
        encoding="utf-8")
    title = Dom(chromium(tmp, "--dump-dom", probe.as_uri()).stdout).root.find("title").text()
    width, height = (float(x) for x in title.split())
    assert width > 300 and height > 150  # decoded and laid out at its size
    # the page with all but the cost section hidden: the screenshot's top band is the plot
    alone = tmp / "cost-alone.html"
    alone.write_text(path.read_text(encoding="utf-8").replace(
        "</head>", "<style>body > :not(#cost), #cost > :not(figure) {display: none}</style></head>"), encoding="utf-8")
    shot = tmp / "cost.png"
    chromium(tmp, f"--screenshot={shot}", "--window-size=1280,900", alone.as_uri())
    top = Image.open(shot).convert("RGB").crop((0, 0, 1280, 300)).resize((320, 75))
    colours = top.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 20  # the plot's points, labels and axes, not a blank band
