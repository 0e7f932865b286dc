"""End to end in a real browser: `streamlit run dashboard.py`, headless Chromium, Studio, Render, an image shown.

Drives Debian's `chromium` through its `chromium-driver` with Selenium (nothing is downloaded). Waits
on the app's own elements, never a fixed time. Skipped where Chromium is missing, except in CI
(`CI` set), where `.ci/run` installs it and a skip would hide a broken dashboard.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a lighthouse keeper on a storm-lashed cliff at dusk, lantern raised"
TIMEOUT = 90  # seconds for a cold server's first paint (the dashboard's imports) and the render


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser test (.ci/run installs chromium and chromium-driver)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """The dashboard on a free port with offline defaults and a fresh home; its URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("KEYART_SDXL_MODEL", "KEYART_SDXL_REFINER", "KEYART_STYLES")}
    env |= {"KEYART_HOME": str(tmp_path / "home"), "KEYART_LLM": "offline", "HF_HUB_OFFLINE": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = (tmp_path / "streamlit.log").open("w")
    command = [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:  # the server's own health check, polled
            assert proc.poll() is None, f"streamlit exited with {proc.returncode}:\n{(tmp_path / 'streamlit.log').read_text()}"
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.read().strip() == b"ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"streamlit did not answer in {TIMEOUT}s:\n{(tmp_path / 'streamlit.log').read_text()}"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def browser():
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        _missing("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium  # with the driver's path given too, Selenium Manager downloads nothing
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1600,1900", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def _idle(driver) -> bool:
    """The script has finished running: no "Running..." status widget, no stale elements fading out."""
    return not driver.execute_script(
        "return !!document.querySelector('[data-testid=\"stStatusWidget\"]') || "
        "document.querySelectorAll('[data-stale=\"true\"]').length > 0"
    )


def test_studio_renders_an_image_in_a_real_browser(browser, server, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, TIMEOUT, poll_frequency=0.2)
    # 1. Open the app and its Studio tab, once the app has painted its tabs.
    browser.get(server)
    wait.until(lambda d: any(t.text.strip() == "Studio" for t in d.find_elements(By.CSS_SELECTOR, '[data-testid="stTab"]')))
    studio = next(t for t in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stTab"]') if t.text.strip() == "Studio")
    studio.click()
    prompt = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".st-key-studio_prompt textarea")))
    wait.until(_idle)
    # 2. Type a prompt (Ctrl+Enter commits it, as a user's click elsewhere would), then Render.
    prompt.click()
    prompt.send_keys(PROMPT)
    prompt.send_keys(Keys.CONTROL, Keys.ENTER)
    wait.until(_idle)
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-studio_go button"))).click()
    # 3. The rendered image, loaded (non-zero natural width), inside the Studio's output; and its parameters.
    image = wait.until(
        lambda d: next(
            (
                im
                for im in d.find_elements(By.CSS_SELECTOR, '.st-key-studio_output [data-testid="stImage"] img')
                if d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", im)
            ),
            False,
        )
    )
    wait.until(lambda d: PROMPT in " ".join(c.text for c in d.find_elements(By.CSS_SELECTOR, '.st-key-studio_output [data-testid="stCode"]')))
    wait.until(_idle)
    # No hover or focus left on a control, so no tooltip lies over the page in the screenshot.
    ActionChains(browser).move_to_element(browser.find_element(By.CSS_SELECTOR, ".st-key-studio_output [data-testid=\"stCaptionContainer\"]")).perform()
    browser.execute_script("document.activeElement && document.activeElement.blur()")
    assert image.is_displayed()
    width = browser.execute_script("return arguments[0].naturalWidth", image)
    assert width > 0
    assert "Preview card" in browser.find_element(By.CSS_SELECTOR, ".st-key-studio_output").text  # labelled as a preview
    saved = list((tmp_path / "home" / "studio").glob("*.png"))
    assert len(saved) == 1, saved
    # 4. The screenshot, for a person to look at.
    shot = tmp_path / "studio.png"
    assert browser.save_screenshot(str(shot)), "Chromium took no screenshot"
    if os.environ.get("KEYART_SCREENSHOTS"):
        folder = Path(os.environ["KEYART_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, folder / "studio.png")
