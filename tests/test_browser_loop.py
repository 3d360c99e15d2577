"""A real Chromium runs the Inside-the-loop tab, moves the step scrubber, picks a word of the step's attention,
and saves assets/screenshots/inside-the-loop.png (-scrubbed.png after the scrub, -attention.png after the word)."""
import pytest

from tests.test_browser import CHROMIUM, SCREENSHOTS, app_in_browser, open_tab

playwright = pytest.importorskip("playwright.sync_api")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_inside_the_loop_runs_and_scrubs_in_a_real_browser_without_console_errors():
    with app_in_browser() as (page, url):
        page.goto(url, wait_until="load")
        open_tab(page, "Inside the loop")
        page.get_by_text("Run first, then move the slider.").wait_for(timeout=60_000)
        page.locator("#run-loop").click()
        page.locator("#gallery-loop img").nth(24).wait_for(state="attached", timeout=180_000)
        page.get_by_text("Step 25 of 25").wait_for(timeout=60_000)
        assert page.locator("#loop-filmstrip img").count() == 1 and page.locator("#loop-chart img").count() == 1
        page.locator("#loop-channels").scroll_into_view_if_needed()  # gallery images load when scrolled to
        page.locator("#loop-channels img").nth(3).wait_for(state="visible", timeout=30_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(SCREENSHOTS / "inside-the-loop.png"), full_page=True)

        page.locator("#loop-scrubber input[type=range]").fill("7")  # what dragging the slider sends
        page.locator("#loop-scrubber input[type=range]").dispatch_event("pointerup")
        page.get_by_text("Step 7 of 25").wait_for(timeout=30_000)
        assert page.locator("#loop-anatomy-text").get_by_text("g = 7.5").count() == 1
        page.wait_for_timeout(500)
        page.locator("#loop-scrubber").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "inside-the-loop-scrubbed.png"))

        # the scrubbed step's attention: its overlay, and a word's map that changes when another word is picked
        page.locator("#loop-attention-text").get_by_text("step 7/25").wait_for(timeout=30_000)
        page.locator("#loop-attention-overlay").scroll_into_view_if_needed()
        page.locator("#loop-attention-overlay img").wait_for(state="visible", timeout=30_000)
        heat = page.locator("#loop-attention-heat img").get_attribute("src")
        page.locator("#loop-attention-word input").click()
        page.get_by_role("option", name="circle", exact=True).click()
        page.wait_for_function(f"() => document.querySelector('#loop-attention-heat img').src !== {heat!r}",
                               timeout=30_000)
        page.locator("#loop-attention-text").get_by_text("“circle”'s map").wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(SCREENSHOTS / "inside-the-loop-attention.png"))
        assert page.get_by_text("Error", exact=True).count() == 0  # gradio's error toast
