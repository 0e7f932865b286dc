"""Settings read once: one table of variables, one object from the environment and flags, nothing reading deeper."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.errors import LLMNotConfigured
from assistant.workflows.settings import VARIABLES, Settings, help_epilog, value_of

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_from_an_empty_environment():
    s = Settings.from_env({})
    assert (s.llm, s.engine, s.quality, s.home, s.llm_timeout, s.llm_json, s.blocklist) == ("offline", "auto", "catalog", None, 60.0, "auto", ())
    assert s.home_path == ROOT / "data" / "home"
    assert s.image.sdxl_model is None and s.image.lora_dir is None


def test_the_environment_then_flags_which_win():
    env = {
        "KEYART_HOME": "/srv/show", "KEYART_LLM": "OpenAI", "KEYART_LLM_MODEL": "qwen2.5:7b", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "KEYART_LLM_TIMEOUT": "12", "KEYART_QUALITY": "draft", "KEYART_BLOCKLIST": "/a.txt:/b.txt", "KEYART_SDXL_MODEL": "/models/sdxl",
        "KEYART_DEVICE": "cuda:1", "KEYART_LORA_DIR": "  ",  # blank counts as unset
    }  # fmt: skip
    s = Settings.from_env(env)
    assert (s.home, s.llm, s.llm_model, s.llm_timeout, s.quality) == (Path("/srv/show"), "openai", "qwen2.5:7b", 12.0, "draft")
    assert s.blocklist == (Path("/a.txt"), Path("/b.txt")) and s.image.sdxl_model == "/models/sdxl" and s.image.lora_dir is None
    flagged = Settings.from_env(env, llm="offline", quality=None, device="cpu", home=Path("/tmp/h"))
    assert (flagged.llm, flagged.quality, flagged.image.device, flagged.home) == ("offline", "draft", "cpu", Path("/tmp/h"))
    assert value_of(s, "KEYART_BLOCKLIST") == "/a.txt:/b.txt" and value_of(s, "KEYART_SDXL_MODEL") == "/models/sdxl"
    assert value_of(s, "OPENAI_API_KEY") is None


@pytest.mark.parametrize(
    "env, message",
    [
        ({"KEYART_LLM": "gpt"}, "choose one of: offline, openai, transformers"),
        ({"KEYART_QUALITY": "best"}, "choose one of: catalog, draft, final"),
        ({"KEYART_LLM_TIMEOUT": "soon"}, "KEYART_LLM_TIMEOUT must be a number"),
        ({"KEYART_LLM_TIMEOUT": "-1"}, "more than 0 seconds"),
        ({"KEYART_LLM_JSON": "xml"}, "json_schema"),
    ],
)
def test_bad_values_say_which_variable_and_what_it_takes(env, message):
    with pytest.raises(LLMNotConfigured, match=message):
        Settings.from_env(env)


def test_unknown_flags_are_a_programming_error():
    with pytest.raises(TypeError, match="colour"):
        Settings.from_env({}, colour="red")


def test_one_table_lists_every_variable_the_code_reads():
    names = [v.env for v in VARIABLES]
    assert len(names) == len(set(names))
    for expected in ("KEYART_HOME", "KEYART_LLM", "KEYART_SDXL_MODEL", "KEYART_SDXL_REFINER", "KEYART_LORA_DIR", "KEYART_STYLES", "KEYART_BLOCKLIST", "KEYART_DEVICE", "KEYART_DTYPE", "KEYART_MEMORY", "KEYART_QUALITY"):
        assert expected in names


def test_help_and_the_readme_list_the_same_variables():
    epilog = help_epilog()
    helps = [
        subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
        for command in (["dataprep.py", "run"], ["-m", "assistant"])
    ]
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    for v in VARIABLES:
        assert v.env in epilog and all(v.env in text for text in helps), v.env
        assert f"| `{v.env}` |" in table, f"README's configuration table lacks {v.env}"


def _environment_reads(path: Path) -> list[str]:
    """`os.environ` / `os.getenv` uses in a module, as 'file:line'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and isinstance(node.value, ast.Name) and node.value.id == "os":
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_only_the_settings_modules_read_the_environment():
    # The hub's own HF_HUB_OFFLINE is read where the hub is used (sdxl_load), Ray's own RAY_AUTH_*
    # where a cluster is joined (imagegen.scale), inductor's TORCHINDUCTOR_CACHE_DIR where the
    # compile cache is chosen (sdxl_compile), and nothing else.
    compile_ = "imagegen/engines/sdxl_compile.py"
    allowed = {"assistant/workflows/settings.py", "imagegen/settings.py", "imagegen/engines/sdxl_load.py", "imagegen/scale/__init__.py", compile_}
    files = [*ROOT.glob("assistant/**/*.py"), *ROOT.glob("imagegen/**/*.py"), ROOT / "dataprep.py", ROOT / "dashboard.py"]
    reads = [hit for path in files if str(path.relative_to(ROOT)) not in allowed for hit in _environment_reads(path)]
    assert reads == [], f"read the environment outside the settings modules: {reads}"
    hub = _environment_reads(ROOT / "imagegen" / "engines" / "sdxl_load.py")
    assert len(hub) <= 1 and "HF_HUB_OFFLINE" in (ROOT / "imagegen" / "engines" / "sdxl_load.py").read_text()
    scale = ROOT / "imagegen" / "scale" / "__init__.py"
    lines = scale.read_text().splitlines()
    assert all("RAY_AUTH_" in lines[int(hit.rsplit(":", 1)[1]) - 1] for hit in _environment_reads(scale)), "imagegen.scale reads only Ray's auth variables"
    text = (ROOT / compile_).read_text()
    assert 'CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"' in text
    assert all("CACHE_ENV" in text.splitlines()[int(hit.rsplit(":", 1)[1]) - 1] for hit in _environment_reads(ROOT / compile_)), "sdxl_compile touches only inductor's cache variable"
