"""`python -m imagegen` through its real entry point: render, info, reproduce, and bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from imagegen.cli import main

SMALL = ["--width", "64", "--height", "64", "--steps", "2"]


def pngs(folder):
    return sorted(folder.glob("*.png"))


def test_help_lists_samplers_styles_and_sizes():
    done = subprocess.run([sys.executable, "-m", "imagegen", "render", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for expected in ("DPM++ 2M SDE", "Euler a", "UniPC", "DEIS", "DPM++ 2M Karras", "SGM Uniform", "watercolor", "retro-poster", "1216x832", "--schedule-type", "--refiner-switch-at", "--no-refiner", "KEYART_SDXL_MODEL", "--control", "KEYART_CONTROLNET_DIR"):
        assert expected in done.stdout, expected


def test_help_lists_every_image_variable_from_the_one_table(capsys):
    from imagegen.settings import VARIABLES

    with pytest.raises(SystemExit):
        main(["render", "--help"])
    out = capsys.readouterr().out
    for variable in VARIABLES:
        assert f"  {variable.env} " in out and variable.meaning in out and variable.default in out, variable.env


def test_the_cli_reads_the_environment_at_its_edge(tmp_path, monkeypatch, capsys):
    extra = tmp_path / "mine.json"
    extra.write_text(json.dumps([{"name": "ukiyo-e", "description": "woodblock print", "prompt": "ukiyo-e print of {prompt}"}]))
    monkeypatch.setenv("KEYART_STYLES", str(extra))
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    assert "woodblock print" in capsys.readouterr().out  # the configured styles are listed
    assert main(["render", "a wave", "--style", "ukiyo-e", "--seed", "1", "--output", str(tmp_path / "out"), *SMALL]) == 0
    capsys.readouterr()
    [png] = pngs(tmp_path / "out")
    assert main(["info", str(png)]) == 0
    assert "ukiyo-e print of a wave" in capsys.readouterr().out


def test_preview_render_says_why_and_writes_labelled_pngs(tmp_path, capsys):
    assert main(["render", "a harbour at night", "--style", "anime", "--seed", "5", "--batch-size", "2", "--output", str(tmp_path), *SMALL]) == 0
    out, err = capsys.readouterr()
    assert "engine: preview" in err and "KEYART_SDXL_MODEL" in err
    files = pngs(tmp_path)
    assert [f.name for f in files] == ["00000-5.png", "00001-6.png"]
    assert out.split() == [str(files[0]), "seed", "5", str(files[1]), "seed", "6"]
    assert main(["info", str(files[1]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["keyart"]["preview"] is True and info["keyart"]["engine"] == "preview"
    assert "Seed: 6," in info["parameters"] and "anime key visual of a harbour at night" in info["parameters"]


@pytest.fixture
def sdxl_env(tiny_model_dirs, monkeypatch):
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tiny_model_dirs[0]))
    monkeypatch.setenv("KEYART_SDXL_REFINER", str(tiny_model_dirs[1]))


def test_sdxl_render_reads_back_as_a1111_and_reproduces_bit_identically(tmp_path, sdxl_env, capsys):
    first, again = tmp_path / "first", tmp_path / "again"
    args = ["render", "the keeper's lamp, (storm:1.2)", "--negative-prompt", "blurry", "--sampler", "DPM++ 2M SDE Karras", "--cfg-scale", "6.5", "--seed", "1234", "--batch-size", "2", "--style", "cinematic"]
    assert main([*args, *SMALL, "--refiner-switch-at", "0.5", "--output", str(first)]) == 0
    capsys.readouterr()
    original = pngs(first)[1]
    assert main(["info", str(original)]) == 0
    text = capsys.readouterr().out
    lines = text.split("parameters:\n", 1)[1].split("\n\nkeyart:", 1)[0].splitlines()
    assert lines[0].startswith("cinematic key art of the keeper's lamp, (storm:1.2), anamorphic lens")
    assert lines[1].startswith("Negative prompt: cartoon, illustration") and lines[1].endswith(", blurry")
    assert lines[2].startswith(
        "Steps: 2, Sampler: DPM++ 2M SDE, Schedule type: Karras, CFG scale: 6.5, Seed: 1235, Size: 64x64, "
        "Model: tiny-sdxl-base, Batch size: 2, Batch pos: 1, Refiner: tiny-sdxl-refiner, Refiner switch at: 0.5"
    )
    assert main(["render", "--from", str(original), "--output", str(again)]) == 0
    [copy] = pngs(again)
    assert copy.name.endswith("-1235.png")
    assert np.array_equal(np.asarray(Image.open(copy)), np.asarray(Image.open(original)))


def test_from_with_overrides_is_a_variation_on_that_image(tmp_path, sdxl_env, capsys):
    assert main(["render", "a ferry", "--seed", "77", "--no-refiner", *SMALL, "--output", str(tmp_path / "a")]) == 0
    [source] = pngs(tmp_path / "a")
    assert main(["render", "--from", str(source), "--steps", "3", "--output", str(tmp_path / "b")]) == 0
    [variant] = pngs(tmp_path / "b")
    assert variant.name.endswith("-77.png")
    capsys.readouterr()
    main(["info", str(variant), "--json"])
    assert "Steps: 3," in json.loads(capsys.readouterr().out)["parameters"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["render", "x", "--width", "1001"], "width must be a multiple of 8"),
        (["render", "x", "--steps", "-1"], "steps must be between 1 and 150"),
        (["render", "x", "--cfg-scale", "99"], "CFG scale must be between 1 and 30"),
        (["render", "x", "--sampler", "Euler z"], "unknown sampler 'Euler z'"),
        (["render", "x", "--style", "vaporwave"], "unknown style 'vaporwave'"),
        (["render", "x", "--engine", "sdxl"], "KEYART_SDXL_MODEL is not set"),
        (["render", "x", "--engine", "midjourney"], "unknown engine"),
        (["render", "x", "--memory", "medvram"], "apply to the sdxl engine"),
        (["render"], "give a PROMPT"),
        (["render", "--from", "missing.png"], "missing.png"),
        (["info", "missing.png"], "missing.png"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code = main([*args, "--output", str(out)] if args[0] == "render" else args)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_info_on_a_png_without_metadata(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert main(["info", str(tmp_path / "plain.png")]) == 2
    assert "error:" in capsys.readouterr().err


def test_sdxl_with_a_missing_model_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tmp_path / "nowhere"))
    assert main(["render", "x", "--output", str(tmp_path / "out"), *SMALL]) == 2
    assert "KEYART_SDXL_MODEL" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_schedule_shows_the_prompt_in_force_at_each_step(capsys):
    assert main(["schedule", "a [cat:dog:0.5] on a [rock|log]", "--steps", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.strip() for line in lines] == ["step 1: a cat on a rock", "step 2: a cat on a log", "step 3: a dog on a rock", "step 4: a dog on a log"]
    assert main(["schedule", "[a:b:10]", "--steps", "30", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [[10, "a"], [30, "b"]]
    # Bad syntax: exit 2 and one line that says how to fix it.
    assert main(["schedule", "a [cat:dog"]) == 2
    assert "end it with ]" in capsys.readouterr().err
