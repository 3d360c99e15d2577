"""A real Chromium drives the comparison tabs and the guidance grid's plot; screenshots land in assets/screenshots/."""
import pytest

from tests.app_server import ROOT
from tests.test_browser import CHROMIUM, SCREENSHOTS, app_in_browser, open_tab

playwright = pytest.importorskip("playwright.sync_api")
INIT = ROOT / "assets" / "examples" / "red_circle_on_blue.png"
TABS = [  # tab label, run button, what fills, how many, screenshot
    ("Schedulers", "#run-schedulers", "#gallery-schedulers img", 24, "schedulers"),
    ("Strength sweep", "#run-strength-sweep", "#gallery-strength-sweep img", 5, "strength-sweep"),
    ("Seed interpolation", "#run-seed-interpolation", "#gallery-seed-interpolation img", 8, "seed-interpolation"),
    ("Guidance grid", "#run-grid", "#guidance-plot img", 1, "guidance-effect"),
]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_comparison_tabs_run_in_a_real_browser_without_console_errors():
    with app_in_browser() as (page, url):
        page.goto(url, wait_until="load")
        page.get_by_role("tab", name="Text to image").wait_for(timeout=60_000)
        for label, button, filled, count, name in TABS:  # one page, as a user would click through
            open_tab(page, label)
            if label == "Strength sweep":
                page.locator("#sweep-init-image input[type=file]").set_input_files(str(INIT))
                page.wait_for_timeout(1000)
            page.locator(button).click()
            page.locator(filled).nth(count - 1).wait_for(state="attached", timeout=240_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
            assert page.locator(filled).count() >= count
            assert page.get_by_text("Error", exact=True).count() == 0  # gradio's error toast
            if label == "Seed interpolation":
                assert page.locator("#seed-animation img").get_attribute("src").split("?")[0].endswith(".gif")
            if label == "Guidance grid":
                assert page.locator("#guidance-table").get_by_text("reads:").count() >= 9
