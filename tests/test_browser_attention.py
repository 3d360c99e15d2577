"""A real Chromium runs the Attention maps tab: maps appear, a click on a word shows its map, a step its own;
screenshot."""
import pytest

from tests.test_browser import CHROMIUM, SCREENSHOTS, app_in_browser, open_tab

playwright = pytest.importorskip("playwright.sync_api")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_attention_tab_maps_every_word_and_a_click_picks_one():
    with app_in_browser() as (page, url):
        page.goto(url, wait_until="load")
        open_tab(page, "Attention maps")
        page.locator("#run-attention").click()
        page.locator("#gallery-attention img").nth(6).wait_for(state="attached", timeout=180_000)
        assert page.locator("#gallery-attention img").count() == 7  # a red circle on a blue background
        heat = page.locator("#attention-heat img")
        before = heat.get_attribute("src")
        page.locator("#attention-words").get_by_text("red", exact=True).click()
        page.wait_for_function("() => document.querySelector('#attention-word textarea').value === 'red'",
                               timeout=30_000)
        page.wait_for_function(f"() => document.querySelector('#attention-heat img').src !== {before!r}",
                               timeout=30_000)
        # one step's map: the slider's number box, as a keyboard user sets it
        all_steps = heat.get_attribute("src")
        box = page.locator("#attention-step input[type=number]")
        box.fill("3")
        box.press("Enter")
        page.wait_for_function(f"() => document.querySelector('#attention-heat img').src !== {all_steps!r}",
                               timeout=30_000)
        page.wait_for_timeout(1000)
        page.locator("#attention-overlay").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "attention-maps.png"), full_page=True)
        assert page.get_by_text("Error", exact=True).count() == 0  # gradio's error toast
