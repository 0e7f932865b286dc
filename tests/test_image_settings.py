"""The image side's settings: one table of variables, read once (ImageSettings.from_env) and passed down."""

import ast
import dataclasses
import os
from pathlib import Path

import pytest

from imagegen import hashes, styles
from imagegen.settings import ENGINE_OPTIONS, VARIABLES, ImageSettings, Variable, configure, help_text, variable, variable_named

IMAGEGEN = Path(__file__).resolve().parent.parent / "imagegen"


def test_every_field_has_one_variable_and_the_table_is_plain():
    assert isinstance(VARIABLES, tuple) and all(type(v) is Variable for v in VARIABLES)
    assert [v.field for v in VARIABLES] == [f.name for f in dataclasses.fields(ImageSettings)]
    assert len({v.env for v in VARIABLES}) == len(VARIABLES) and all(v.env.startswith("KEYART_") or v.env == "RAY_ADDRESS" for v in VARIABLES)  # Ray's own, as Ray reads it
    assert all(v.default and v.meaning and "\n" not in v.meaning for v in VARIABLES)
    assert [f.name for f in dataclasses.fields(Variable)] == ["env", "field", "default", "meaning"]  # nothing image-only
    assert variable("lora_dir").env == "KEYART_LORA_DIR" and variable_named("KEYART_CACHE").field == "cache"
    with pytest.raises(KeyError, match="KEYART_HOME is not an image setting"):
        variable_named("KEYART_HOME")


def test_defaults(tmp_path):
    settings = ImageSettings.from_env({})
    assert settings == ImageSettings(cache=str(Path.home() / ".cache" / "keyart"))
    assert (settings.sdxl_model, settings.sdxl_refiner, settings.sdxl_config, settings.lora_dir) == (None, None, None, None)
    assert (settings.styles, settings.device, settings.dtype, settings.memory) == ((), None, "auto", "normal")
    assert ImageSettings.from_env({"XDG_CACHE_HOME": str(tmp_path)}).cache == str(tmp_path / "keyart")
    assert settings.engine_options() == {}


def test_values_from_the_environment():
    env = {
        "KEYART_SDXL_MODEL": " /models/sdxl ",
        "KEYART_SDXL_REFINER": "stabilityai/stable-diffusion-xl-refiner-1.0",
        "KEYART_SDXL_CONFIG": "/models/sdxl-config",
        "KEYART_LORA_DIR": "/models/Lora",
        "KEYART_STYLES": os.pathsep.join(["/a.json", "", "/b.json"]),
        "KEYART_DEVICE": "cuda:1",
        "KEYART_DTYPE": "bf16",
        "KEYART_MEMORY": "medvram",
        "KEYART_CACHE": "/tmp/keyart-cache",
        "KEYART_HOME": "/not/ours",
    }
    settings = ImageSettings.from_env(env)
    assert settings == ImageSettings(
        sdxl_model="/models/sdxl",
        sdxl_refiner="stabilityai/stable-diffusion-xl-refiner-1.0",
        sdxl_config="/models/sdxl-config",
        lora_dir="/models/Lora",
        styles=("/a.json", "/b.json"),
        device="cuda:1",
        dtype="bf16",
        memory="medvram",
        cache="/tmp/keyart-cache",
    )
    assert settings.value("KEYART_SDXL_MODEL") == "/models/sdxl"
    assert settings.value("KEYART_STYLES") == os.pathsep.join(["/a.json", "/b.json"])
    assert settings.engine_options() == {"device": "cuda:1", "dtype": "bf16", "memory": "medvram"}


def test_an_empty_value_counts_as_unset():
    env = {v.env: "" for v in VARIABLES} | {"KEYART_SDXL_MODEL": "   ", "KEYART_STYLES": os.pathsep}
    assert ImageSettings.from_env(env) == ImageSettings.from_env({})
    assert ImageSettings.from_env(env).value("KEYART_SDXL_MODEL") is None
    assert ImageSettings().value("KEYART_STYLES") is None


def test_overrides_win_and_none_is_ignored():
    env = {"KEYART_DEVICE": "cuda", "KEYART_MEMORY": "lowvram"}
    settings = ImageSettings.from_env(env, device="cpu", memory=None, dtype=None, lora_dir="/loras")
    assert (settings.device, settings.memory, settings.dtype, settings.lora_dir) == ("cpu", "lowvram", "auto", "/loras")
    assert settings.overridden(styles=["/c.json"]).styles == ("/c.json",)
    assert settings.overridden() is settings
    with pytest.raises(TypeError, match=r"unknown image settings \['devcie'\]"):
        ImageSettings.from_env({}, devcie="cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.device = "mps"
    assert ENGINE_OPTIONS == ("device", "dtype", "memory", "speed", "compile")


def test_from_env_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("KEYART_SDXL_MODEL", "/models/sdxl")
    monkeypatch.setenv("KEYART_LORA_DIR", "")
    settings = ImageSettings.from_env()
    assert settings.sdxl_model == "/models/sdxl" and settings.lora_dir is None


def test_configure_hands_the_styles_and_the_cache_over(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYART_STYLES", str(tmp_path / "from-env.json"))
    configure(ImageSettings(styles=(str(tmp_path / "mine.json"),), cache=str(tmp_path / "cache")))
    assert styles.extra_files() == (tmp_path / "mine.json",)
    assert hashes.cache_dir() == tmp_path / "cache"


def test_help_text_lists_each_variable_on_one_line():
    lines = help_text().splitlines()
    assert len(lines) == len(VARIABLES)
    for line, v in zip(lines, VARIABLES):
        assert line.split()[0] == v.env and v.meaning in line and v.default in line


# -- no module but settings.py reads a KEYART_* variable ------------------------------------------


def environment_reads(tree: ast.AST, constants: dict[str, str]) -> list[tuple[int, str]]:
    """(line, key) for each read of the environment: os.environ[...], os.environ.get(...),
    os.getenv(...), `... in os.environ`; a key that is not a literal string reads as its name."""

    def is_environ(node):
        return (isinstance(node, ast.Attribute) and node.attr == "environ") or (isinstance(node, ast.Name) and node.id == "environ")

    def key(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id, f"<{node.id}>")
        return f"<{ast.unparse(node)}>"

    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and is_environ(node.value):
            reads.append((node.lineno, key(node.slice)))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault") and is_environ(func.value):
                reads.append((node.lineno, key(node.args[0])))
            elif (isinstance(func, ast.Attribute) and func.attr == "getenv") or (isinstance(func, ast.Name) and func.id == "getenv"):
                reads.append((node.lineno, key(node.args[0])))
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and any(map(is_environ, node.comparators)):
            reads.append((node.lineno, key(node.left)))
    return sorted(reads)


def module_constants(tree: ast.Module) -> dict[str, str]:
    """NAME = "text" at module level (MODEL_ENV = "KEYART_SDXL_MODEL")."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            found |= {t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)}
    return found


def test_no_imagegen_module_but_settings_reads_keyart_variables():
    offenders = []
    for path in sorted(IMAGEGEN.rglob("*.py")):
        if path == IMAGEGEN / "settings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, key in environment_reads(tree, module_constants(tree)):
            # A literal name other than KEYART_* is another library's own variable (HF_HUB_OFFLINE).
            if key.startswith("KEYART_") or key.startswith("<"):
                offenders.append(f"{path.relative_to(IMAGEGEN.parent)}:{line} reads {key}")
    assert not offenders, "read KEYART_* variables in imagegen/settings.py only (ImageSettings.from_env), then pass them down: " + "; ".join(offenders)


def test_the_scan_sees_each_way_of_reading_the_environment():
    code = (
        'import os\nfrom os import environ, getenv\nMODEL = "KEYART_SDXL_MODEL"\n'
        'os.environ.get("KEYART_LORA_DIR")\nos.environ["KEYART_STYLES"]\nos.getenv(MODEL)\ngetenv("KEYART_CACHE")\n'
        '"KEYART_DEVICE" in os.environ\nenviron.get(name)\nos.environ.get("HF_HUB_OFFLINE")\n'
    )
    tree = ast.parse(code)
    assert environment_reads(tree, module_constants(tree)) == [
        (4, "KEYART_LORA_DIR"), (5, "KEYART_STYLES"), (6, "KEYART_SDXL_MODEL"), (7, "KEYART_CACHE"),
        (8, "KEYART_DEVICE"), (9, "<name>"), (10, "HF_HUB_OFFLINE"),
    ]  # fmt: skip
