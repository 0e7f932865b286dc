"""Importing keyart stays light: no torch, diffusers or transformers until an engine needs them, no Ray without --ray."""

import subprocess
import sys

HEAVY = ("torch", "diffusers", "transformers", "ray")  # ray: only with --ray (imagegen.scale)


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_packages_and_cli_import_without_heavy_libraries():
    out = run(
        "import sys, imagegen, imagegen.engines, imagegen.cli, imagegen.metadata, imagegen.engines.preview, assistant\n"
        "from imagegen import RenderRequest\n"
        "RenderRequest('x', sampler='DPM++ 2M Karras', style='anime')\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert out.strip() == "[]"


def test_help_and_a_preview_render_stay_light(tmp_path):
    out = run(
        "import sys\n"
        "from imagegen.cli import main\n"
        f"main(['render', 'a quay at dawn', '--engine', 'preview', '--width', '64', '--height', '64', '--output', {str(tmp_path)!r}])\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert out.strip().splitlines()[-1] == "[]"
    assert len(list(tmp_path.glob("*.png"))) == 1


def test_offline_prompts_stay_light():
    out = run(
        "import sys\n"
        "from assistant.cli import main\n"
        "main(['episode', '--season', '1', '--episode', '2', '--llm', 'offline', '--json'])\n"
        f"print(sorted(m for m in {HEAVY!r} + ('langchain_openai', 'openai') if m in sys.modules))"
    )
    assert '"technique": "meta-prompt"' in out and out.strip().splitlines()[-1] == "[]"


def test_dataprep_with_offline_models_stays_light(tmp_path):
    out = run(
        "import sys\n"
        "import dataprep\n"
        f"code = dataprep.main(['run', '--home', {str(tmp_path)!r}, '--season', '1', '--episodes', '1', '--styles', 'anime'])\n"
        f"print(code, sorted(m for m in {HEAVY!r} + ('langchain_openai', 'openai') if m in sys.modules))"
    )
    assert out.strip().splitlines()[-1] == "0 []"
