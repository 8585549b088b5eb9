"""The web page (`nst serve`) driven in a real headless Chromium through Selenium.

The server is started the way a user starts it (`nst serve --port 0`, the console
script in a subprocess); the browser is Debian's `chromium` with `chromium-driver`
(.ci/run installs them).  Without them the tests skip, unless NST_REQUIRE_BROWSER=1
(set by .ci/run), when they fail.  Screenshots go to NST_WEB_SCREENSHOTS (a folder,
e.g. docs/web) or else to the test's temporary folder.
"""

import base64
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
NST = ROOT / ".venv" / "bin" / "nst"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
UPLOAD_LIMIT_MB = 2  # the server under test refuses files above this
WAIT_S = 180  # the longest wait for one thing on the page (a loaded 2-core CI machine)

pytestmark = pytest.mark.slow

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("NST_REQUIRE_BROWSER") == "1":
        raise RuntimeError("chromium and chromedriver are required (NST_REQUIRE_BROWSER=1); "
                           "apt-get install chromium chromium-driver")
    pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)
if os.environ.get("NST_REQUIRE_BROWSER") != "1":
    pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def server(weights_path, sample_pair):
    """`nst serve --port 0` in a subprocess: yields its URL; on exit, checks it removed its temporary folder."""
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("nst-web-*"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen([str(NST), "serve", "--port", "0", "--max-upload-mb", str(UPLOAD_LIMIT_MB)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()  # blocks until the networks are loaded and the port is open
        assert line.startswith("nst serve: open http://127.0.0.1:"), (line, process.stderr.read())
        url = line.split("open ", 1)[1].split()[0]
        yield {"url": url, "process": process}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    left = set(Path(tempfile.gettempdir()).glob("nst-web-*")) - before
    assert not left, f"the server left its uploads behind: {left}"


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--disable-gpu"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(WAIT_S)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("NST_WEB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ------------------------------------------------------------------ helpers

def open_page(driver, server):
    driver.get(server["url"])
    wait(driver, lambda d: d.execute_script("return document.body.dataset.ready === '1'"), "the page to start")


def wait(driver, condition, what, timeout=WAIT_S):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message=f"waiting for {what}")


def result_state(driver) -> dict:
    return driver.execute_script(
        "const i = document.getElementById('result');"
        "return {job: i.dataset.job || '', state: i.dataset.state || '', method: i.dataset.method || '',"
        "        previews: Number(i.dataset.previews || 0), complete: i.complete, width: i.naturalWidth,"
        "        height: i.naturalHeight, message: document.getElementById('message').hidden ? '' :"
        "        document.getElementById('message').textContent};")


def screenshot(driver, path: Path) -> None:
    """The browser's window as a JPEG (a quarter of the PNG's bytes, for the README)."""
    with Image.open(io.BytesIO(driver.get_screenshot_as_png())) as image:
        image.convert("RGB").save(path, quality=85)


def drop_file(driver, zone_id: str, path: Path) -> None:
    """Drop a file on an element as a drag and drop would: dragover, then drop with a DataTransfer holding it."""
    driver.execute_script(
        "const [zoneId, name, encoded] = arguments;"
        "const bytes = Uint8Array.from(atob(encoded), c => c.charCodeAt(0));"
        "const transfer = new DataTransfer();"
        "transfer.items.add(new File([bytes], name, {type: 'image/jpeg'}));"
        "const zone = document.getElementById(zoneId);"
        "for (const kind of ['dragover', 'drop'])"
        "  zone.dispatchEvent(new DragEvent(kind, {dataTransfer: transfer, bubbles: true, cancelable: true}));",
        zone_id, Path(path).name, base64.b64encode(Path(path).read_bytes()).decode())


def fetch_bytes(driver, path: str) -> bytes:
    """GET ``path`` inside the page (with its session cookie); the body's bytes."""
    encoded = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.ok ? r.arrayBuffer() : Promise.reject(r.status)).then(b => {"
        "  const u = new Uint8Array(b); let s = '';"
        "  for (let i = 0; i < u.length; i += 8192) s += String.fromCharCode.apply(null, u.subarray(i, i + 8192));"
        "  done(btoa(s)); }).catch(e => done('ERROR ' + e));", path)
    assert not encoded.startswith("ERROR"), f"{path}: {encoded}"
    return base64.b64decode(encoded)


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def sha256_of(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def expected_size(path, long_side):
    from nst.io.images import size_for_long_side

    with Image.open(path) as image:
        height, width = size_for_long_side(image.height, image.width, long_side)
    return width, height


def downloaded(folder: Path, suffix: str, timeout=60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = [p for p in folder.iterdir() if p.suffix == suffix]
        if files and not list(folder.glob("*.crdownload")):
            return files[0]
        time.sleep(0.1)  # pacing a poll of an observable state (the download complete)
    raise AssertionError(f"no {suffix} file was downloaded into {folder}: {list(folder.iterdir())}")


def http_status(url, cookie=None) -> int:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def new_session_cookie(server) -> str:
    with urllib.request.urlopen(server["url"], timeout=30) as response:
        return response.headers["Set-Cookie"].split(";", 1)[0]


# ------------------------------------------------------------------ the page

def test_fast_result_appears_and_the_strength_slider_renders_again(server, browser, sample_pair, shots):
    content, style = sample_pair
    open_page(browser, server)
    browser.find_element(By.ID, "content-file").send_keys(str(content))
    drop_file(browser, "style-drop", style)  # the style by drag and drop, the photo through the file chooser
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#style-list li")) == 1
         and d.find_element(By.ID, "content-thumb").is_displayed(), "both uploads to be shown")
    screenshot(browser, shots / "0-before.jpg")
    browser.find_element(By.ID, "run").click()
    wait(browser, lambda d: result_state(d)["state"] == "done" and result_state(d)["width"] > 0, "the fast result")
    first = result_state(browser)
    assert first["method"] == "fast" and first["message"] == ""
    assert (first["width"], first["height"]) == expected_size(content, 512)  # the page's default size
    screenshot(browser, shots / "1-fast.jpg")
    first_png = fetch_bytes(browser, f"/api/jobs/{first['job']}/result.png")

    slider = browser.find_element(By.ID, "strength")
    slider.send_keys(Keys.ARROW_LEFT)  # one step: strength 1 -> 0.95, a real input event
    wait(browser, lambda d: result_state(d)["job"] not in ("", first["job"]) and result_state(d)["width"] > 0,
         "the re-rendered result")
    second = result_state(browser)
    record = json.loads(fetch_bytes(browser, f"/api/jobs/{second['job']}/record.json"))
    assert record["method"] == "fast" and record["settings"]["alpha"] == pytest.approx(0.95)
    assert record["content"]["name"] == Path(content).name and record["styles"][0]["name"] == Path(style).name
    assert record["styles"][0]["sha256"] == sha256_of(style)  # the dropped bytes arrived whole
    changed = np.abs(pixels(fetch_bytes(browser, f"/api/jobs/{second['job']}/result.png")).astype(int)
                     - pixels(first_png).astype(int))
    assert changed.mean() > 0.5  # less style: a different picture, not the same bytes again

    # Issue 15: the number format. "auto" names what it picks on this server's CPU and the record says what
    # ran; choosing fp32 renders again in fp32.
    from selenium.webdriver.support.ui import Select

    from nst.host.precision import choose

    chooser, auto = Select(browser.find_element(By.ID, "precision")), choose("auto")[0]
    assert chooser.first_selected_option.get_attribute("value") == "auto"
    assert f"{auto} on this server" in chooser.first_selected_option.text
    assert record["settings"]["precision"] == auto
    chooser.select_by_value("fp32")
    wait(browser, lambda d: result_state(d)["job"] not in ("", first["job"], second["job"])
         and result_state(d)["width"] > 0, "the result in fp32")
    third = json.loads(fetch_bytes(browser, f"/api/jobs/{result_state(browser)['job']}/record.json"))
    assert third["settings"]["precision"] == "fp32"


def test_optimisation_previews_stop_and_download(server, browser, sample_pair, shots, downloads):
    content, _ = sample_pair
    open_page(browser, server)
    browser.find_element(By.CSS_SELECTOR, "#content-samples button[data-id='sample-tubingen.jpg']").click()
    browser.find_element(By.CSS_SELECTOR, "#style-samples button[data-id='sample-starry_night.jpg']").click()
    browser.find_element(By.CSS_SELECTOR, "input[name=method][value=optimise]").click()
    for field, value in (("size", "128"), ("iterations", "400")):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    browser.find_element(By.ID, "run").click()

    previews = {}  # preview number -> its pixels, fetched while the run goes on
    deadline = time.monotonic() + WAIT_S
    while len({p.tobytes() for p in previews.values()}) < 2:
        assert time.monotonic() < deadline, f"fewer than two different previews: {result_state(browser)}"
        now = result_state(browser)
        assert now["state"] in ("", "queued", "running"), now
        if now["previews"] and now["previews"] not in previews:
            previews[now["previews"]] = pixels(fetch_bytes(browser, f"/api/jobs/{now['job']}/preview.png"))
        time.sleep(0.1)  # pacing a poll of an observable state (a new preview)
    progress = browser.find_element(By.ID, "progress-text").text
    assert "Step" in progress and "left" in progress and "cost" in progress, progress
    screenshot(browser, shots / "2-during.jpg")

    browser.find_element(By.ID, "stop").click()
    wait(browser, lambda d: result_state(d)["state"] in ("stopped", "done", "failed"), "the run to stop")
    assert result_state(browser)["state"] == "stopped"
    wait(browser, lambda d: d.find_element(By.ID, "download-png").is_displayed(), "the download links")
    screenshot(browser, shots / "3-after.jpg")
    browser.find_element(By.ID, "download-png").click()
    png = downloaded(downloads, ".png")
    with Image.open(png) as image:
        image.load()  # the whole file decodes
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == expected_size(content, 128)
    browser.find_element(By.ID, "download-json").click()
    record = json.loads(downloaded(downloads, ".json").read_text())
    assert record["method"] == "optimise" and record["status"] == "stopped"
    assert 0 < record["steps"] < 400 and record["settings"]["size"] == 128
    assert np.isfinite(record["final_costs"]["total"])


def test_jobs_are_private_to_their_session(server, browser):
    open_page(browser, server)
    answer = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/fast', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify("
        "  {content: 'sample-tubingen.jpg', styles: [{id: 'sample-starry_night.jpg', weight: 1}], size: 64})})"
        ".then(r => r.json()).then(done).catch(e => done({error: String(e)}));")
    assert answer.get("state") == "done", answer
    job = answer["id"]
    assert fetch_bytes(browser, f"/api/jobs/{job}/result.png")[:8] == b"\x89PNG\r\n\x1a\n"  # its owner sees it
    for path in (f"/api/jobs/{job}", f"/api/jobs/{job}/result.png", f"/api/jobs/{job}/record.json"):
        assert http_status(server["url"].rstrip("/") + path) == 401  # no session
        assert http_status(server["url"].rstrip("/") + path, new_session_cookie(server)) == 404  # someone else


def _bomb_png(side=20000) -> bytes:
    """A 1-bit PNG of side x side pixels, all black: tens of kilobytes that decode to gigabytes as RGB."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = (b"\0" + bytes((side + 7) // 8)) * side  # filter byte + packed bits, per row
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def test_bad_uploads_get_a_message_and_the_server_stays_up(server, browser, sample_pair, tmp_path, shots):
    content, _ = sample_pair
    bad = {
        "notes.png": (b"this is a text file, not a picture\n" * 20, "not an image"),
        "bomb.png": (_bomb_png(), "decompression-bomb guard"),
        "huge.jpg": (os.urandom((UPLOAD_LIMIT_MB + 1) * 2 ** 20), f"over the {UPLOAD_LIMIT_MB} MB upload limit"),
        "cut.jpg": (Path(content).read_bytes()[: Path(content).stat().st_size // 2], "truncated"),
    }
    open_page(browser, server)
    for name, (data, expected) in bad.items():
        path = tmp_path / name
        path.write_bytes(data)
        browser.execute_script("document.getElementById('message').hidden = true;")
        browser.find_element(By.ID, "content-file").send_keys(str(path))
        wait(browser, lambda d: result_state(d)["message"] != "", f"the message about {name}")
        message = result_state(browser)["message"]
        assert expected in message and name in message, message
        assert "/tmp" not in message and "\n" not in message  # the visitor's name, not the server's path
        assert server["process"].poll() is None
        assert http_status(server["url"]) == 200
    screenshot(browser, shots / "4-bad-upload.jpg")
    assert not browser.find_element(By.ID, "content-thumb").is_displayed()  # nothing was taken as the photo
