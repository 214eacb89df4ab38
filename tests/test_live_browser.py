"""The live page in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium)."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from http_helpers import serve, wait_for
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from streamproc.config.settings import HttpSettings, Settings
from streamproc.server import StatusServer
from streamproc.server.detect_pool import open_detect_pool
from streamproc.server.view import NoSources

pytestmark = pytest.mark.slow  # a real headless Chromium

# no network here: no browser downloads, no background traffic (Selenium Manager is bypassed by
# naming the driver; the flags keep Chromium from phoning home)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--force-device-scale-factor=1",
)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, (
        "Debian packages chromium and chromium-driver are needed (scripts/setup.sh)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console, CSP reports included
    with tempfile.TemporaryDirectory(prefix="streamproc-chromium-") as profile:
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            driver.set_page_load_timeout(30)
            yield driver
        finally:
            driver.quit()


# the picture the page shows, read back at its natural size through a canvas
READ_IMAGE = """
const img = document.querySelector('img[data-source="' + arguments[0] + '"]');
if (!img || !img.complete || img.naturalWidth === 0) return null;
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
canvas.getContext('2d').drawImage(img, 0, 0);
return canvas.toDataURL('image/png');
"""


def test_live_page_shows_a_frame_of_the_source(
    browser: webdriver.Chrome, sample_video: Path, tmp_path: Path
) -> None:
    with serve([sample_video]) as served:
        served.wait_done()
        browser.get(served.url())
        assert "streamproc" in browser.title
        shown: list[str] = []

        def picture_shown() -> bool:
            data = browser.execute_script(READ_IMAGE, "sample")
            shown[:] = [data] if data else []
            return bool(data)

        wait_for(picture_shown, timeout=20, what="the live view to show a picture")
        wait_for(
            lambda: "stopped" in browser.find_element("css selector", "figcaption .state").text,
            what="the page's script to show the source's state",
        )
        browser.save_screenshot(str(tmp_path / "live.png"))
    png = base64.b64decode(shown[0].split(",", 1)[1])
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    with av.open(str(sample_video)) as container:
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    assert picture.shape == frames[0].shape
    # the closest source frame: pixels match except where boxes and labels are drawn
    closeness = [(np.abs(picture.astype(int) - f.astype(int)).max(axis=2) <= 24).mean() for f in frames]
    best = int(np.argmax(closeness))
    assert closeness[best] > 0.9, f"no source frame matches the live view (best {closeness[best]:.2f})"
    assert best == len(frames) - 1, "a finished file shows its last frame"
    assert closeness[best] - closeness[0] > 0.05, "the view must be distinguishable from other frames"


# every resource the page asked for (scripts, styles, the schema, icons), as full URLs
LOADED_RESOURCES = "return performance.getEntriesByType('resource').map(entry => entry.name);"
TOKEN = "docs-in-the-browser-token-0123456789"


@pytest.mark.parametrize(
    ("page", "rendered"),
    [
        # Swagger UI: an operation block per route, the detection API among them
        ("docs", "#operations-default-detect_api_v1_detect_post"),
        # ReDoc: the menu entry of the detection API's operation
        ("redoc", "[id='operation/detect_api_v1_detect_post']"),
    ],
)
def test_api_docs_render_in_chromium_without_network(
    browser: webdriver.Chrome, page: str, rendered: str
) -> None:
    """No network exists here: a script from a CDN would leave the page blank. With a token set, the
    browser sends it as Basic credentials, as after a user answered its prompt."""
    settings = HttpSettings(enabled=True, port=0, token=TOKEN)
    with StatusServer(settings, NoSources(), require_sources=False) as server:
        origin = server.url.rstrip("/")
        browser.get(server.url.replace("://", f"://viewer:{TOKEN}@") + "openapi.json")  # remembered
        browser.get(server.url + page)
        wait_for(
            lambda: bool(browser.find_elements("css selector", rendered)),
            timeout=30,
            what=f"{page} to render the API",
        )
        loaded = browser.execute_script(LOADED_RESOURCES)
        console = [entry["message"] for entry in browser.get_log("browser")]
    assert f"{origin}/openapi.json" in loaded, loaded
    assert any(url.startswith(f"{origin}/docs/assets/") and url.endswith(".js") for url in loaded)
    # ReDoc's built-in vendor logo is stopped by the page's Content-Security-Policy, unsent
    blocked = [url for url in loaded if not url.startswith(origin + "/")]
    for url in blocked:
        assert any(url in line and "Content Security Policy" in line for line in console), url
    assert len(blocked) <= 1, blocked


@pytest.mark.slow  # a Chromium start: ~10 s on the shared machine
def test_swagger_shows_optional_parameters_by_their_type(browser: webdriver.Chrome) -> None:
    """Swagger UI 5 showed `string | (string | null)` for each optional query parameter."""
    settings = HttpSettings(enabled=True, port=0)
    with StatusServer(settings, NoSources(), require_sources=False) as server:
        browser.get(server.url + "docs")
        operation = "#operations-default-detect_api_v1_detect_post"
        wait_for(lambda: bool(browser.find_elements("css selector", operation)), timeout=30, what="/docs")
        browser.find_element("css selector", f"{operation} .opblock-summary").click()
        wait_for(
            lambda: len(browser.find_elements("css selector", "tr[data-param-name]")) == 4,
            timeout=10,
            what="the parameters of POST /api/v1/detect",
        )
        types = {
            row.get_attribute("data-param-name"): row.find_element("css selector", ".parameter__type").text
            for row in browser.find_elements("css selector", "tr[data-param-name]")
        }
    assert types == {"classify": "string", "top_k": "integer", "model": "string", "min_score": "number"}


def test_swagger_try_it_out_uploads_a_photo(browser: webdriver.Chrome, shared_dir: Path) -> None:
    """/docs offers a file field for POST /api/v1/detect; choosing a photo and pressing Execute
    sends it as the form's 'file' and shows the faces the API found."""
    http = HttpSettings(enabled=True, port=0)
    pool = open_detect_pool(Settings(http=http))
    try:
        with StatusServer(http, NoSources(), None, pool, require_sources=False) as server:
            browser.get(server.url + "docs")
            operation = "#operations-default-detect_api_v1_detect_post"
            wait_for(lambda: bool(browser.find_elements("css selector", operation)), timeout=30, what="/docs")
            browser.find_element("css selector", f"{operation} .opblock-summary-control").click()
            click_when_shown(browser, f"{operation} .try-out__btn")
            chooser = find_when_shown(browser, f"{operation} input[type=file]")
            chooser.send_keys(str(shared_dir / "images" / "face.jpg"))
            click_when_shown(browser, f"{operation} .execute")
            status = f"{operation} .live-responses-table .response .response-col_status"
            shown = find_when_shown(browser, status, timeout=60).text
            body = browser.find_element("css selector", f"{operation} .live-responses-table pre").text
    finally:
        pool.close()
    assert shown.startswith("200"), shown
    answer = json.loads(body)
    assert (answer["width"], answer["height"], answer["format"]) == (512, 355, "jpeg")
    assert len(answer["faces"]) == 2 and answer["warnings"] == []


def find_when_shown(browser: webdriver.Chrome, selector: str, timeout: float = 20) -> Any:
    found: list[Any] = []

    def shown() -> bool:
        found[:] = browser.find_elements("css selector", selector)
        return bool(found)

    wait_for(shown, timeout=timeout, what=selector)
    return found[0]


def click_when_shown(browser: webdriver.Chrome, selector: str) -> None:
    find_when_shown(browser, selector).click()
