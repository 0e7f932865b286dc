"""The house rules (tests/house_rules.py) on the repository: no import breaks one, every module is
classified, every module is scanned; and the checker itself catches what it should on synthetic trees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.house_rules import (
    CORE, FRONT_ENDS, IMAGEGEN_PRIVATE, IMAGEGEN_PUBLIC, IMAGEGEN_RUNS, NOT_SCANNED, PACKAGES, ROOT, RULES, SCRIPTS, SERVER, WORKFLOWS,
    imports_of, matches, modules_of, repo_imports, violations,
)

# --- the rules on the repository -------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_house_rule(rule):
    found = violations(rule, ROOT, repo_imports)
    assert not found, f"{len(found)} import(s) break rule {rule.id}:\n" + "\n".join(found)


def test_every_assistant_module_is_a_front_end_a_workflow_or_core():
    modules = [m for m in modules_of(ROOT) if not m.startswith("imagegen")]
    groups = {"FRONT_ENDS": FRONT_ENDS, "WORKFLOWS": WORKFLOWS, "CORE": CORE}
    wrong = []
    for m in modules:
        inside = [g for g, patterns in groups.items() if matches(m, patterns)]
        if len(inside) != 1:
            wrong.append(f"{m}: in {inside or 'no group'}")
    assert not wrong, "classify each module in exactly one of FRONT_ENDS, WORKFLOWS, CORE:\n" + "\n".join(wrong)
    stale = [p for p in CORE if "*" not in p and p not in modules]
    assert not stale, f"CORE names modules that no longer exist: {stale}"


def test_every_imagegen_module_is_public_private_or_a_renderer():
    groups = {"IMAGEGEN_PUBLIC": IMAGEGEN_PUBLIC, "IMAGEGEN_RUNS": IMAGEGEN_RUNS, "IMAGEGEN_PRIVATE": IMAGEGEN_PRIVATE}
    wrong = []
    for m in (m for m in modules_of(ROOT) if m.startswith("imagegen")):
        inside = [g for g, patterns in groups.items() if matches(m, patterns)]
        if len(inside) != 1:
            wrong.append(f"{m}: in {inside or 'no group'}")
    assert not wrong, "classify each imagegen module in exactly one group:\n" + "\n".join(wrong)


def test_every_module_of_the_repository_is_scanned():
    skip = set(NOT_SCANNED) | {".venv", "data", "__pycache__"}
    loose = sorted(
        p.name
        for p in ROOT.iterdir()
        if not p.name.startswith(".")
        and p.name not in skip
        and not p.name.endswith(".egg-info")
        and ((p.suffix == ".py" and p.name not in SCRIPTS) or (p.is_dir() and (p / "__init__.py").exists() and p.name not in PACKAGES))
    )
    assert not loose, f"add these to SCRIPTS or PACKAGES so the house rules see them: {loose}"
    assert len(modules_of(ROOT)) > 50


def test_the_server_uses_the_queue():
    server = [m for m in modules_of(ROOT) if matches(m, SERVER)]
    if not server:
        pytest.skip("imagegen.server does not exist yet")
    uses = [i for m in server for i in repo_imports(modules_of(ROOT)[m], ROOT) if matches(i.module, ("imagegen.queue", "imagegen.queue_*"))]
    assert uses, f"imagegen.server ({', '.join(server)}) never imports imagegen.queue: it talks to the queue only"


# --- the checker itself ----------------------------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


SYNTHETIC = {
    "imagegen/__init__.py": "from .request import RenderRequest\n",
    "imagegen/request.py": "class RenderRequest: ...\n",
    "imagegen/png_files.py": "def read_png(p): ...\ndef write_png(r, p): ...\n",
    "imagegen/engines/__init__.py": "class Progress: ...\n",
    "imagegen/engines/lora.py": "",
    "imagegen/engines/sdxl.py": (
        "from . import lora\n"
        "from . import Progress\n"
        "from .. import png_files\n"
        "from ..request import RenderRequest\n"
        "def load():\n"
        "    import torch\n"
        "    from assistant.store import Store\n"  # breaks rule 1, inside a function
    ),
    "assistant/__init__.py": "",
    "assistant/store.py": "class Store: ...\n",
    "assistant/catalog.py": (
        "from typing import TYPE_CHECKING\n"
        "import torch\n"  # breaks rule 5
        "if TYPE_CHECKING:\n"
        "    from imagegen import RenderRequest\n"  # breaks rule 2, even never executed
    ),
    "assistant/ui/__init__.py": "",
    "assistant/ui/studio.py": (
        "from ..store import Store\n"
        "from imagegen.png_files import read_png\n"  # fine: reading
        "class Tab:\n"
        "    def render(self):\n"
        "        from imagegen.engines.sdxl import load\n"  # breaks rules 3 and 4
        "        from imagegen.png_files import write_png\n"  # breaks rule 3
    ),
    "assistant/workflows/__init__.py": "",
    "assistant/workflows/render.py": "from imagegen.engines import Progress\nfrom imagegen.png_files import write_png\n",
}


def by_rule(root: Path) -> dict[str, list[str]]:
    return {rule.id: violations(rule, root) for rule in RULES}


def test_the_checker_catches_violations(tmp_path):
    write(tmp_path, SYNTHETIC)
    found = by_rule(tmp_path)

    def lines(rule_id):
        return sorted(v.split(": `")[0] for v in found[rule_id])

    assert lines("1-imagegen-is-a-leaf") == ["imagegen/engines/sdxl.py:7"]
    assert lines("2-core-knows-no-images") == ["assistant/catalog.py:4"]
    assert lines("3-only-workflows-render") == ["assistant/ui/studio.py:5", "assistant/ui/studio.py:6"]
    assert lines("4-front-ends-use-public-types") == ["assistant/ui/studio.py:5"]
    assert lines("5-heavy-libraries-load-late") == ["assistant/catalog.py:2"]  # sdxl's torch is in a function
    assert not any(found[r] for r in ("6-server-talks-to-the-queue", "7-core-points-down", "8-workflows-serve-every-front-end"))
    message = found["3-only-workflows-render"][1]
    assert "assistant/ui/studio.py:6: `from imagegen.png_files import write_png` (in def render" in message
    assert "imagegen.png_files.write_png" in message and "only assistant.workflows meets" in message


def test_the_server_rules_catch_an_engine_import(tmp_path):
    write(tmp_path, SYNTHETIC | {"imagegen/server/__init__.py": "import fastapi\nimport torch\nfrom ..engines import sdxl\n"})
    found = by_rule(tmp_path)
    assert [v.split(": `")[0] for v in found["6-server-talks-to-the-queue"]] == ["imagegen/server/__init__.py:3"]
    assert [v.split(": `")[0] for v in found["5-server-loads-only-fastapi-early"]] == ["imagegen/server/__init__.py:2"]
    assert not any("imagegen/server" in v for v in found["5-heavy-libraries-load-late"])


def test_the_ray_rules_keep_ray_behind_the_flag(tmp_path):
    files = {
        "imagegen/scale/__init__.py": "",
        "imagegen/scale/cluster.py": "import ray\nimport torch\n",
        "imagegen/scale/replica.py": "from ray import serve\n",
        "imagegen/queue.py": "from .scale import cluster\n\ndef later():\n    from .scale import replica\n",
        "assistant/workflows/service.py": "import ray\n",
    }
    write(tmp_path, SYNTHETIC | files)
    found = by_rule(tmp_path)
    assert sorted(v.split(": `")[0] for v in found["5-ray-only-on-ray"]) == ["assistant/workflows/service.py:1", "imagegen/queue.py:1"]
    assert [v.split(": `")[0] for v in found["5-ray-side-loads-only-ray-early"]] == ["imagegen/scale/cluster.py:2"]
    assert not any("imagegen/scale" in v for v in found["5-heavy-libraries-load-late"])


def test_relative_and_function_level_imports_are_resolved(tmp_path):
    write(tmp_path, SYNTHETIC)
    sdxl = {(i.line, i.module, i.name, i.scope, i.runs_at_import) for i in imports_of(tmp_path / "imagegen/engines/sdxl.py", tmp_path)}
    assert sdxl == {
        (1, "imagegen.engines.lora", "imagegen.engines.lora", "top level", True),  # `from . import lora`: a module
        (2, "imagegen.engines", "imagegen.engines.Progress", "top level", True),  # `from . import Progress`: a name
        (3, "imagegen.png_files", "imagegen.png_files", "top level", True),  # `from .. import png_files`
        (4, "imagegen.request", "imagegen.request.RenderRequest", "top level", True),
        (6, "torch", "torch", "in def load", False),
        (7, "assistant.store", "assistant.store.Store", "in def load", False),
    }
    studio = {(i.line, i.module, i.scope) for i in imports_of(tmp_path / "assistant/ui/studio.py", tmp_path)}
    assert (1, "assistant.store", "top level") in studio  # `from ..store import Store` in assistant/ui/
    assert (5, "imagegen.engines.sdxl", "in def render") in studio  # a method inside a class
    catalog = {(i.line, i.module, i.scope, i.runs_at_import) for i in imports_of(tmp_path / "assistant/catalog.py", tmp_path)}
    assert (4, "imagegen", "under TYPE_CHECKING", False) in catalog
