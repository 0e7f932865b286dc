"""The Studio tab under Streamlit's AppTest, for tests/test_dashboard_studio*.py: the app on the offline
defaults (preview engine, KEYART_HOME in tmp), and the helpers that press its buttons, set its
controls and read what it wrote."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from imagegen.metadata import parse_infotext
from imagegen.png_files import read_png

ROOT = Path(__file__).resolve().parents[1]
STUDIO = """
from assistant.ui import common, studio

common.settings()
studio.render()
"""
TIMEOUT = 60  # the first run imports the engine side; AppTest's own default is 3 s


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYART_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEYART_LLM", "offline")
    return tmp_path / "home"


@pytest.fixture
def app(home):
    at = AppTest.from_string(STUDIO, default_timeout=TIMEOUT).run()
    assert not at.exception
    return at


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def go(at: AppTest) -> AppTest:
    """Press the big button: Render, Hunt seeds or Render A and B, whichever the mode shows."""
    at.button(key="studio_go").click()
    return run(at)


def set_controls(at: AppTest, **values) -> AppTest:
    """Set controls by their RenderRequest field name (widget key `studio_<name>`)."""
    for name, value in values.items():
        key = f"studio_{name}"
        widget = next((w for kind in ("text_area", "number_input", "slider", "selectbox", "radio", "toggle", "multiselect") for w in getattr(at, kind) if w.key == key), None)
        assert widget is not None, f"no control {key}"
        widget.set_value(value)
    return run(at)


def png_bytes(size, colour="white") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def fields_of(path: Path) -> tuple[str, str, dict[str, str]]:
    return parse_infotext(read_png(path).infotext)


def load(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="studio_png_upload").set_value((name, data, "image/png"))
    run(at)
    at.button(key="studio_load").click()
    return run(at)
