"""Seed hunts, X/Y plots and variation seeds: plans, layout and labels, saved files, the CLI, bad input."""

import json
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from imagegen import RenderRequest
from imagegen.cli import main
from imagegen.contact_sheet import BACKGROUND, SheetLayout
from imagegen.engines.preview import PreviewEngine
from imagegen.errors import InvalidRequest
from imagegen.grids import (
    MAX_CELLS,
    Axis,
    compose_grid,
    parse_axis,
    plan_seeds,
    plan_xy,
    run_grid,
    save_grid,
    seed_hunt,
    xy_requests,
)
from imagegen.metadata import parse_infotext
from imagegen.png_files import read_png, request_from_png
from imagegen.request import MAX_SEED

SMALL = ["--width", "64", "--height", "64", "--steps", "2"]


SMALL_FIELDS = {"width", "height", "num_inference_steps", "seed", "refiner"}  # the fields small() sets


def small(prompt="a lighthouse at dusk", **fields):
    return RenderRequest(prompt, **{"width": 64, "height": 64, "num_inference_steps": 2, "seed": 42, "refiner": "off", **fields})


# -- seed hunt ----------------------------------------------------------------------------------


def test_seed_hunt_runs_consecutive_seeds_at_draft_settings():
    requests = seed_hunt(RenderRequest("a harbour", seed=100), 4, explicit={"seed"})
    assert [r.seed for r in requests] == [100, 101, 102, 103]
    for r in requests:
        assert (r.num_inference_steps, r.sampler, r.schedule_type, r.guidance_scale, r.refiner) == (16, "DPM++ 2M", "Karras", 6.0, "off")
        assert (r.batch_size, r.batch_count, r.prompt) == (1, 1, "a harbour")


def test_seed_hunt_lets_the_users_fields_win():
    [r] = seed_hunt(RenderRequest("x", seed=1, num_inference_steps=4, sampler="Euler a"), 1, explicit={"seed", "num_inference_steps", "sampler"})
    assert (r.num_inference_steps, r.sampler, r.schedule_type, r.guidance_scale) == (4, "Euler a", "Automatic", 6.0)
    # Even a default value chosen on purpose wins; "final" is the other preset.
    [r] = seed_hunt(RenderRequest("x", seed=1, num_inference_steps=30), 1, explicit={"num_inference_steps"})
    assert r.num_inference_steps == 30 and r.guidance_scale == 6.0
    [r] = seed_hunt(RenderRequest("x", seed=1), 1, quality="final", explicit={"seed"})
    assert (r.num_inference_steps, r.guidance_scale, r.refiner) == (30, 7.0, "auto")


def test_seed_hunt_resolves_a_random_seed_once_and_wraps():
    seeds = [r.seed for r in seed_hunt(RenderRequest("x"), 5, explicit=())]
    assert seeds[0] != -1 and seeds == [(seeds[0] + i) % (MAX_SEED + 1) for i in range(5)]
    assert [r.seed for r in seed_hunt(RenderRequest("x", seed=MAX_SEED), 2, explicit={"seed"})] == [MAX_SEED, 0]


@pytest.mark.parametrize("count", [0, MAX_CELLS + 1, 2.5, True])
def test_seed_hunt_count_is_checked(count):
    with pytest.raises(InvalidRequest, match="between 1 and 100 seeds"):
        seed_hunt(RenderRequest("x"), count, explicit=())


def test_seed_plan_is_near_square_with_seed_labels():
    plan = plan_seeds(small(), 7, explicit=SMALL_FIELDS)
    assert (len(plan.requests), len(plan.column_labels)) == (3, 3)
    assert plan.row_labels == ["Seed: 42", "Seed: 45", "Seed: 48"] and plan.column_labels == ["+0", "+1", "+2"]
    assert [[r.seed if r else None for r in row] for row in plan.requests] == [[42, 43, 44], [45, 46, 47], [48, None, None]]
    assert plan.captions[2] == ["Seed: 48", "", ""] and len(plan.cells) == 7


# -- axes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind, values, labels",
    [
        ("CFG Scale: 5, 7, 9", "CFG Scale", (5.0, 7.0, 9.0), ["CFG Scale: 5", "CFG Scale: 7", "CFG Scale: 9"]),
        ("cfg scale: 4.5,6", "CFG Scale", (4.5, 6.0), ["CFG Scale: 4.5", "CFG Scale: 6"]),
        ("CFG Scale: 5-9 [3]", "CFG Scale", (5.0, 7.0, 9.0), None),
        ("CFG Scale: 1-2 (+0.5)", "CFG Scale", (1.0, 1.5, 2.0), None),
        ("Steps: 1-5", "Steps", (1, 2, 3, 4, 5), None),
        ("Steps: 1-10 (+2)", "Steps", (1, 3, 5, 7, 9), ["Steps: 1", "Steps: 3", "Steps: 5", "Steps: 7", "Steps: 9"]),
        ("Steps: 10, 20-30 (+10)", "Steps", (10, 20, 30), None),
        ("Steps: 9-5", "Steps", (9, 8, 7, 6, 5), None),
        ("Seed: 1-3, 10", "Seed", (1, 2, 3, 10), ["Seed: 1", "Seed: 2", "Seed: 3", "Seed: 10"]),
        ("Sampler: euler a, DPM++ 2M Karras", "Sampler", ("Euler a", "DPM++ 2M Karras"), ["Euler a", "DPM++ 2M Karras"]),
        ('Prompt S/R: dusk, "dawn, early", noon', "Prompt S/R", ("dusk", "dawn, early", "noon"), ["dusk", "dawn, early", "noon"]),
        ("Nothing", "Nothing", (), [""]),
        ("", "Nothing", (), [""]),
    ],
)
def test_parse_axis(text, kind, values, labels):
    axis = parse_axis(text)
    assert (axis.kind, axis.values) == (kind, values)
    if labels is not None:
        assert axis.labels == labels
    assert parse_axis(f"{axis.kind}: {axis.text}").values == axis.values  # "X Values" reads back


@pytest.mark.parametrize(
    "text, message",
    [
        ("Colour: red", "unknown axis kind 'Colour'; choose one of: Nothing, Prompt S/R, CFG Scale"),
        ("CFG Scale 5, 7", "an axis is 'KIND: VALUES'"),
        ("CFG Scale: high", "CFG Scale values are numbers or ranges such as '4-8 (+0.5)' (got 'high')"),
        ("CFG Scale:", "the CFG Scale axis has no values"),
        ("Steps: 7.5", "Steps values are whole numbers"),
        ("Steps: 1.5-3", "Steps ranges are whole numbers"),
        ("Steps: 5-1 (+1)", "never goes from 5 to 1"),
        ("Steps: 1-500", "gives 500 values, more than 100"),
        ("Steps: 1-5 [0]", "between 1 and 100"),
        ("Steps: 10, 10", "lists '10' twice"),
        ("Sampler: Euler z", "unknown sampler 'Euler z'; choose one of: DPM++ 2M"),
        ("Seed: one", "Seed values are whole numbers"),
    ],
)
def test_parse_axis_errors_teach(text, message):
    with pytest.raises(InvalidRequest) as info:
        parse_axis(text)
    assert message in str(info.value)


def test_random_seeds_on_a_seed_axis_are_drawn_once():
    axis = parse_axis("Seed: -1, -1, 7")
    assert len(set(axis.values)) == 3 and axis.values[2] == 7 and -1 not in axis.values
    assert axis.labels[0] == f"Seed: {axis.values[0]}"


# -- X/Y plans ----------------------------------------------------------------------------------


def test_xy_requests_put_y_down_and_x_across():
    base = small("a ship at dusk", negative_prompt="dusk haze", schedule_type="Karras")
    x, y = parse_axis("CFG Scale: 5, 7, 9"), parse_axis("Prompt S/R: dusk, dawn")
    grid = xy_requests(base, x, y)
    assert len(grid) == 2 and all(len(row) == 3 for row in grid)
    for i, row in enumerate(grid):
        for j, r in enumerate(row):
            assert r.guidance_scale == x.values[j]
            assert r.prompt == f"a ship at {y.values[i]}" and r.negative_prompt == f"{y.values[i]} haze"
            assert r.seed == 42 and r.batch_size == 1
    # A sampler axis keeps the request's schedule where the sampler has it, else Automatic.
    [[euler_a, dpm]] = xy_requests(base, parse_axis("Sampler: Euler a, DPM++ 2M"), Axis("Nothing"))
    assert (euler_a.sampler, euler_a.schedule_type, dpm.sampler, dpm.schedule_type) == ("Euler a", "Automatic", "DPM++ 2M", "Karras")


def test_xy_shares_one_resolved_seed_unless_seed_varies():
    cells = [r for row in xy_requests(RenderRequest("x"), parse_axis("Steps: 2, 3"), parse_axis("CFG Scale: 5, 6")) for r in row]
    assert len({r.seed for r in cells}) == 1 and cells[0].seed != -1
    [row] = xy_requests(RenderRequest("x"), parse_axis("Seed: 3, 4"), Axis("Nothing"))
    assert [r.seed for r in row] == [3, 4]


@pytest.mark.parametrize(
    "x, y, message",
    [
        ("Prompt S/R: cat, dog", "", "'cat' is not in the prompt or the negative prompt"),
        ("CFG Scale: 5, 6", "CFG Scale: 7, 8", "X and Y both vary CFG Scale"),
        ("", "", "needs at least one axis"),
        ("Steps: 1-20", "Seed: 1-6", "20 x 6 = 120 cells is too many (at most 100)"),
        ("CFG Scale: 5, 50", "", "CFG scale must be between 1 and 30 (got 50)"),
        ("Steps: 10, 200", "", "steps must be between 1 and 150"),
    ],
)
def test_xy_errors_teach(x, y, message):
    with pytest.raises(InvalidRequest) as info:
        xy_requests(small(), parse_axis(x), parse_axis(y))
    assert message in str(info.value)


def test_xy_plan_labels_and_infotext_fields():
    plan = plan_xy(small(), parse_axis("CFG Scale: 5, 7"), parse_axis("Sampler: Euler a, DPM++ 2M"))
    assert plan.row_labels == ["Euler a", "DPM++ 2M"] and plan.column_labels == ["CFG Scale: 5", "CFG Scale: 7"]
    assert plan.fields == {"Script": "X/Y/Z plot", "X Type": "CFG Scale", "X Values": "5, 7", "Y Type": "Sampler", "Y Values": "Euler a, DPM++ 2M"}
    assert plan_xy(small(), parse_axis("Steps: 2, 3")).row_labels == [""]


# -- composing and rendering --------------------------------------------------------------------


def test_compose_grid_size_is_cells_plus_label_margins():
    images = [Image.new("RGB", (64, 64), (200, 30 * k, 0)) for k in range(5)]
    grid = compose_grid(images, rows=2, columns=3, row_labels=["a", "b"], column_labels=["1", "2", "3"], title="t")
    layout = SheetLayout.for_thumb(64)
    assert grid.size == layout.size(2, 3) == (layout.label_width + layout.gap + 3 * (64 + layout.gap), layout.title_height + layout.header_height + 2 * (64 + layout.gap))
    left, top, right, bottom = layout.cell_box(0, 1)
    assert grid.getpixel(((left + right) // 2, (top + bottom) // 2)) == (200, 30, 0)
    left, top, _, _ = layout.cell_box(1, 2)  # the sixth slot has no image: left blank, not a placeholder
    assert grid.getpixel((left + 4, top + 4)) == BACKGROUND
    with pytest.raises(InvalidRequest, match="needs 2 row and 3 column labels"):
        compose_grid(images, rows=2, columns=3, row_labels=["a"], column_labels=["1", "2", "3"], title="t")


def test_run_grid_with_the_preview_engine(tmp_path):
    plan = plan_xy(small(), parse_axis("CFG Scale: 5, 7, 9"), parse_axis("Steps: 2, 4"))
    reports = []
    grid, cells = run_grid(PreviewEngine(), plan, lineage={"show": "Harbour Lights"}, progress=lambda d, t: reports.append((d, t)))
    # 1. Layout: rows x columns of 64 px cells plus the label margins; one image per cell, in order.
    assert grid.image.size == SheetLayout.for_thumb(64).size(2, 3)
    assert len(cells) == 6 and [(c.request.num_inference_steps, c.request.guidance_scale) for c in cells[:4]] == [(2, 5), (2, 7), (2, 9), (4, 5)]
    assert cells[4].lineage["lineage"] == {"show": "Harbour Lights", "grid": {"kind": "xy", "row": 1, "column": 1, "row_label": "Steps: 4", "column_label": "CFG Scale: 7"}}
    # 2. Progress counts steps across cells and ends complete.
    assert reports[-1] == (18, 18) and [d for d, _ in reports] == sorted(d for d, _ in reports)
    # 3. The grid reads as the first cell, plus A1111's X/Y fields and the axes in the lineage.
    assert grid.infotext.startswith(cells[0].infotext + ", Script: X/Y/Z plot, X Type: CFG Scale")
    fields = parse_infotext(grid.infotext)[2]
    assert (fields["X Values"], fields["Y Type"], fields["Y Values"], fields["Seed"]) == ("5, 7, 9", "Steps", "2, 4", "42")
    axes = grid.lineage["grid"]
    assert axes["x"] == {"type": "CFG Scale", "values": [5.0, 7.0, 9.0]} and axes["y"] == {"type": "Steps", "values": [2, 4]}
    assert axes["column_labels"] == ["CFG Scale: 5", "CFG Scale: 7", "CFG Scale: 9"] and len(axes["cells"]) == 6
    # 4. Saved: the cells with their own infotext, then the grid named after the first cell.
    grid_path, paths = save_grid(grid, cells, tmp_path)
    assert [p.name for p in paths] == [f"{n:05d}-42.png" for n in range(6)] and grid_path.name == "grid-00000-42.png"
    meta = read_png(grid_path)
    assert meta.lineage["grid"]["files"] == [p.name for p in paths] and "X Type: CFG Scale" in meta.infotext
    assert request_from_png(paths[5])[0].guidance_scale == 9 and "Steps: 4," in read_png(paths[5]).infotext
    assert request_from_png(grid_path)[0] == cells[0].request  # the grid reproduces its first cell, as in A1111


def test_seed_grid_with_the_tiny_sdxl_engine_matches_plain_renders(engine):
    plan = plan_seeds(small(), 3, explicit=SMALL_FIELDS)
    grid, cells = run_grid(engine, plan)
    assert [c.seed for c in cells] == [42, 43, 44] and grid.image.size == SheetLayout.for_thumb(64).size(2, 2)
    assert "Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6" in cells[1].infotext
    [plain] = engine.render(cells[1].request)
    assert np.array_equal(np.asarray(plain.image), np.asarray(cells[1].image))


# -- variation seeds ----------------------------------------------------------------------------


def test_slerp_ends_are_exact_and_the_middle_keeps_the_norm():
    import torch

    from imagegen.variation import slerp

    a = torch.randn((4, 8, 8), generator=torch.Generator().manual_seed(1))
    b = torch.randn((4, 8, 8), generator=torch.Generator().manual_seed(2))
    assert torch.equal(slerp(0.0, a, b), a) and torch.equal(slerp(1.0, a, b), b)
    mid = slerp(0.5, a, b)
    assert not torch.allclose(mid, a) and not torch.allclose(mid, b)
    # Per (channel, column) strip, as A1111 normalises: between the two ends' norms, not shrunk as a straight line would be.
    na, nb, nm, line = (torch.norm(t, dim=1) for t in (a, b, mid, (a + b) / 2))
    assert (nm >= torch.minimum(na, nb) * 0.999).all() and (nm > line).all()
    assert torch.allclose(slerp(0.3, a, a.clone()), a)  # one noise twice: the straight-line fallback


@contextmanager
def sampler(pipe, name):
    """`pipe` on sampler `name`, built from the tiny model's own Euler config (engine renders swap the scheduler)."""
    from diffusers import EulerDiscreteScheduler

    from imagegen import samplers

    pristine = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading")
    original = pipe.scheduler
    pipe.scheduler = samplers.make_scheduler(name, "Automatic", dict(pristine.config))
    try:
        yield pipe.scheduler
    finally:
        pipe.scheduler = original


def _draw(pipe, seeds, *, subseeds=None, strength=0.0, seeds_for_latents=True):
    import torch

    from imagegen.variation import initial_latents

    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    extra = {}
    if subseeds is not None:
        extra["latents"] = initial_latents(pipe, seeds, subseeds, strength, 64, 64, generators=generators)
    out = pipe("a lighthouse", num_inference_steps=2, width=64, height=64, num_images_per_prompt=len(seeds), generator=generators, output_type="np", **extra)
    return out.images


def test_variation_strength_0_is_the_seeds_render_and_1_the_subseeds(tiny_pipes):
    base, _ = tiny_pipes
    # Euler scales its starting noise (sigma > 1), so the latents must be passed unscaled; Euler a is
    # ancestral: its sampling noise must continue the seed's stream, as the plain render's does.
    for name in ("Euler", "Euler a"):
        with sampler(base, name) as scheduler:
            assert scheduler.init_noise_sigma > 1
            assert np.array_equal(_draw(base, [5, 6], subseeds=[9, 10], strength=0.0), _draw(base, [5, 6]))
    with sampler(base, "DPM++ 2M"):  # deterministic: strength 1 is exactly the subseed's render
        assert np.array_equal(_draw(base, [5], subseeds=[9], strength=1.0), _draw(base, [9]))
        between = _draw(base, [5], subseeds=[9], strength=0.3)
        assert not np.array_equal(between, _draw(base, [5])) and not np.array_equal(between, _draw(base, [9]))


def test_initial_latents_checks_its_input(tiny_pipes):
    from imagegen.variation import initial_latents

    base, _ = tiny_pipes
    latents = initial_latents(base, [1, 2], [3, 4], 0.5, 64, 128)
    scale = base.vae_scale_factor  # 2 for the tiny VAE, 8 for SDXL's
    assert tuple(latents.shape) == (2, 4, 64 // scale, 128 // scale) and latents.dtype == base.unet.dtype
    with pytest.raises(InvalidRequest, match="between 0 and 1"):
        initial_latents(base, [1], [2], 1.5, 64, 64)
    with pytest.raises(InvalidRequest, match="one subseed per seed"):
        initial_latents(base, [1, 2], [3], 0.5, 64, 64)


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_grid_with_the_preview_engine(tmp_path, capsys):
    assert main(["grid", "a harbour at night", "--seeds", "4", "--seed", "10", *SMALL, "--engine", "preview", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{tmp_path / f'{n:05d}-{10 + n}.png'}  seed {10 + n}" for n in range(4)] + [f"{tmp_path / 'grid-00000-10.png'}  grid 2x2"]
    cell = read_png(tmp_path / "00003-13.png").infotext
    assert "Steps: 2, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6, Seed: 13" in cell  # draft, but --steps wins
    assert Image.open(tmp_path / "grid-00000-10.png").size == SheetLayout.for_thumb(64).size(2, 2)


def test_cli_xy_json_with_the_preview_engine(tmp_path, capsys):
    args = ["xy", "a ship at dusk", "--x", "CFG Scale: 5,7,9", "--y", "Sampler: Euler a, DPM++ 2M", "--seed", "3", *SMALL]
    assert main([*args, "--engine", "preview", "--output", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["rows"], report["columns"], len(report["images"])) == (2, 3, 6)
    assert report["images"][5] | {"path": None} == {"path": None, "seed": 3, "row": 1, "column": 2, "row_label": "DPM++ 2M", "column_label": "CFG Scale: 9"}
    assert "Sampler: DPM++ 2M" in read_png(report["images"][5]["path"]).infotext
    assert "Y Values: \"Euler a, DPM++ 2M\"" in read_png(report["grid"]).infotext


def test_cli_xy_with_the_tiny_sdxl_model(tmp_path, tiny_model_dirs, monkeypatch, capsys):
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tiny_model_dirs[0]))
    assert main(["xy", "a lighthouse", "--x", "Steps: 1-2", "--seed", "8", "--width", "64", "--height", "64", "--output", str(tmp_path)]) == 0
    assert "engine: sdxl" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["00000-8.png", "00001-8.png", "grid-00000-8.png"]
    assert "Model: tiny-sdxl-base" in read_png(tmp_path / "grid-00000-8.png").infotext


def test_cli_help_lists_axis_kinds_and_ranges(capsys):
    with pytest.raises(SystemExit):
        main(["xy", "--help"])
    out = capsys.readouterr().out
    for expected in ("Prompt S/R", "CFG Scale", "Steps", "Sampler", "Seed", "Nothing", "1-10 (+2)", "5-9 [3]", "--negative-prompt", "Euler a", "--json"):
        assert expected in out, expected


@pytest.mark.parametrize(
    "args, message",
    [
        (["xy", "x", "--x", "CFG Scale: 5, lots"], "CFG Scale values are numbers"),
        (["xy", "x", "--x", "Sampler: Euler z"], "unknown sampler 'Euler z'"),
        (["xy", "x", "--x", "Hue: 1, 2"], "unknown axis kind 'Hue'"),
        (["xy", "x", "--x", "Steps: 1-20", "--y", "Seed: 1-6"], "too many (at most 100)"),
        (["xy", "x", "--x", "Prompt S/R: cat, dog"], "'cat' is not in the prompt"),
        (["xy", "x", "--x", "Steps: 2, 3", "--width", "1001"], "width must be a multiple of 8"),
        (["grid", "x", "--seeds", "0"], "between 1 and 100 seeds"),
        (["grid", "x", "--seeds", "101"], "between 1 and 100 seeds"),
        (["grid", "x", "--sampler", "Euler z"], "unknown sampler"),
        (["grid", "x", "--memory", "medvram"], "apply to the sdxl engine"),
        (["grid", "x", "--engine", "sdxl"], "KEYART_SDXL_MODEL is not set"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main([*args, "--output", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
