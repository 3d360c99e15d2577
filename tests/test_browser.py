"""A real Chromium (Debian's) drives the real app: every tab runs, screenshots land in assets/screenshots/."""
import shutil
from contextlib import contextmanager

import pytest

from tests.app_server import ROOT, running_app

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
SCREENSHOTS = ROOT / "assets" / "screenshots"
TABS = [  # tab label, run button, gallery that fills, images expected
    ("Text to image", "#run-txt2img", "#gallery-txt2img", 1),
    ("Guidance grid", "#run-grid", "#gallery-grid", 9),
    ("Negative prompt", "#run-negative", "#gallery-negative", 9),
    ("Image variation", "#run-variation", "#gallery-variation", 9),
]


# Every tab in the row's order, and what only that tab shows.
ALL_TABS = [("Text to image", "#run-txt2img"), ("Guidance grid", "#run-grid"), ("Negative prompt", "#run-negative"),
            ("Image variation", "#run-variation"), ("Inside the loop", "#run-loop"),
            ("Attention maps", "#run-attention"), ("Schedulers", "#run-schedulers"),
            ("Strength sweep", "#run-strength-sweep"), ("Seed interpolation", "#run-seed-interpolation")]


def open_tab(page, label):
    """Click a tab; gradio moves tabs that do not fit in the row into its "More tabs" menu (plain buttons there)."""
    try:
        page.get_by_role("tab", name=label, exact=True).click(timeout=5_000)
    except playwright.Error:
        page.get_by_role("button", name="More tabs").click()
        page.locator(".overflow-dropdown").get_by_role("button", name=label, exact=True).click()


def tab_labels(page) -> tuple[list, list]:
    """The labels in the tab row, and those in its "More tabs" menu."""
    return (page.locator("[role=tablist] [role=tab]").all_inner_texts(),
            page.locator(".overflow-dropdown button").all_inner_texts())


@contextmanager
def app_in_browser():
    """The real app served and a Chromium page on it (page, url); afterwards no console or page error may be left."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    errors = []
    with running_app() as url, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page, url
        browser.close()
    assert errors == [], errors


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_every_tab_runs_in_a_real_browser_without_console_errors():
    with app_in_browser() as (page, url):
        page.goto(url, wait_until="load")
        page.get_by_role("tab", name="Text to image").wait_for(timeout=60_000)
        for label, button, gallery, count in TABS:
            open_tab(page, label)
            if label == "Image variation":
                page.locator("#init-image input[type=file]").set_input_files(
                    str(ROOT / "assets" / "examples" / "red_circle_on_blue.png"))
                page.wait_for_timeout(1000)
            page.locator(button).click()
            page.locator(f"{gallery} img").nth(count - 1).wait_for(state="attached", timeout=180_000)
            if label == "Text to image":  # the filmstrip is drawn after the images
                page.locator("#txt2img-filmstrip img").wait_for(state="attached", timeout=60_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(SCREENSHOTS / f"{label.lower().replace(' ', '-')}.png"), full_page=True)
            assert page.locator(f"{gallery} img").count() >= count
            # one image stays a thumbnail (gradio would stretch it over the gallery's width, cropped)
            assert page.locator(f"{gallery} .thumbnail-item").first.bounding_box()["width"] < 400
            assert page.get_by_text("Error", exact=True).count() == 0  # gradio's error toast, not "mean error" in a text


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_every_tab_label_shows_once_while_clicking_through_all_tabs_on_one_page():
    # A gr.State made between two tabs once put each later tab in its neighbour's slot: one label twice, the
    # next one gone until a reload. At 1024 px some tabs live in the "More tabs" menu, which is clicked too.
    labels = sorted(label for label, _ in ALL_TABS)
    with app_in_browser() as (page, url):
        for width in (1280, 1024):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(url, wait_until="load")
            page.get_by_role("tab", name="Text to image").wait_for(timeout=60_000)
            from_menu = []
            for label, content in ALL_TABS:
                if label in tab_labels(page)[1]:
                    from_menu.append(label)
                open_tab(page, label)
                page.locator(content).wait_for(state="visible", timeout=10_000)
                page.wait_for_timeout(500)  # gradio re-measures the row after a tab's content is drawn
                row, menu = tab_labels(page)
                assert sorted(row + menu) == labels, (width, label, row, menu)
                assert page.locator("[role=tablist] [role=tab][aria-selected=true]").all_inner_texts() == [label]
            page.screenshot(path=str(SCREENSHOTS / f"tab-row-{width}px.png"))
            if width == 1024:
                assert from_menu, "at 1024 px every tab fit in the row, so the menu went untested"
