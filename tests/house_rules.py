"""The house: keyart's import rules and their checker, on the AST of every module (function-level imports
too); tests/test_house.py applies them to the repository and tests the checker.

Arrows point one way: front ends -> assistant.workflows -> (assistant core, imagegen);
imagegen.server -> imagegen.queue -> engines. The rules are data (RULES); every module must be
classified (FRONT_ENDS / WORKFLOWS / CORE on the language side, IMAGEGEN_PUBLIC / IMAGEGEN_RUNS /
IMAGEGEN_PRIVATE on the image side), so a new file is a decision, not a gap.

Patterns: "a.b" is that name exactly; "a.b.*" is anything below it; "a.b_*" (a trailing star without a
dot) is any name starting with "a.b_". A pattern is matched against the module an import resolves to
and against the imported name (`from imagegen.metadata import write_png` is module `imagegen.metadata`,
name `imagegen.png_files.write_png`). Only static imports are seen: `importlib.import_module` is not.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("imagegen", "assistant")  # scanned recursively
SCRIPTS = ("dataprep.py", "dashboard.py")  # the top-level entry points
NOT_SCANNED = ("tests", "bench")  # they may reach anywhere

# --- the language side, every module in one of three groups ---------------------------------------

FRONT_ENDS = ("dataprep", "dashboard", "assistant.cli*", "assistant.__main__", "assistant.ui", "assistant.ui.*")
WORKFLOWS = ("assistant.workflows", "assistant.workflows.*")
CORE = (  # neither a front end nor a workflow: the language side that knows nothing of images
    "assistant",  # the package's __init__
    "assistant.catalog",
    "assistant.catalog_answers",
    "assistant.conversations",
    "assistant.errors",
    "assistant.llm",
    "assistant.llm_cache",
    "assistant.models",
    "assistant.models.*",
    "assistant.platforms",
    "assistant.policy",
    "assistant.prompting",
    "assistant.prompting.*",
    "assistant.references",
    "assistant.retry",
    "assistant.schemas",
    "assistant.search",
    "assistant.sqlite_file",
    "assistant.store",
)

# --- the image side, every module in one of three groups ------------------------------------------

IMAGEGEN_RUNS = (  # what renders or writes images: engines, the queue, and the tools that drive them
    "imagegen.engines",
    "imagegen.engines.*",
    "imagegen.queue",
    "imagegen.queue_*",
    "imagegen.scale.cluster",  # render replicas on Ray (imagegen.scale itself is the options, public)
    "imagegen.scale.replica",
    "imagegen.scale.engine",
    "imagegen.scale.wire",
    "imagegen.grids",  # run_grid calls an engine, save_grid writes PNGs
    "imagegen.upscale",  # lanczos() renders the upscaled image
    "imagegen.contact_sheet",  # composes a new image from renders
    "imagegen.describe",  # runs the caption and CLIP models (image to prompt, image embeddings)
    "imagegen.describe_*",
    "imagegen.depth",  # runs the depth-estimation model for depth control units
    "imagegen.animate",  # renders an animation's frames and writes its video
    "imagegen.png_files.write_png",  # png_files is public for reading; these two write the image files
    "imagegen.png_files.save_png",
)
IMAGEGEN_PUBLIC = (  # what a front end may import: the request vocabulary, errors, and reading PNGs
    "imagegen",  # the package: RenderRequest, RenderedImage, KeyartError and kin, prompt_schedule
    "imagegen.errors",
    "imagegen.request",
    "imagegen.freeu",  # FreeU's factors as a request names them (RenderRequest.freeu)
    "imagegen.samplers",
    "imagegen.presets",
    "imagegen.styles",
    "imagegen.settings",  # the image side's half of the one settings table
    "imagegen.metadata",  # the infotext and lineage: formatted and parsed
    "imagegen.png_files",  # read_png, request_from_png, writable_folder (write_png/save_png are in IMAGEGEN_RUNS)
    "imagegen.prompt_schedule",
    "imagegen.prompt_syntax",
    "imagegen.axes",  # parses X/Y plot axes; running the plot is imagegen.grids
    "imagegen.canvas",  # sizes and directions of a request's canvas
    "imagegen.control",  # ControlNet units and their preprocessed maps (pixels only)
    "imagegen.animation",  # an animation request and its schedules (checked, nothing rendered)
    "imagegen.scale",  # ScaleOptions: what --ray asks for, checked without Ray
)
IMAGEGEN_PRIVATE = (  # neither: imagegen's own front ends, the HTTP service, and internals
    "imagegen.__main__",
    "imagegen.cli",  # imagegen's own CLI: it calls engines and save_png
    "imagegen.cli_*",
    "imagegen.server",  # the image service: a front end of the queue, not a library
    "imagegen.server.*",
    "imagegen.hashes",
    "imagegen.lettering",
    "imagegen.metadata_modes",
    "imagegen.variation",  # torch latents for the engine
    "imagegen.tiny*",  # tiny random-init models for tests and benchmarks
    "imagegen.pretrained",  # loads the transformers models describe and depth run
)

KEYART = ("assistant", "assistant.*", "dataprep", "dataprep.*", "dashboard", "dashboard.*")
ANY_IMAGEGEN = ("imagegen", "imagegen.*")
HEAVY = (  # each takes seconds to import (or pulls in one that does)
    "torch*",
    "diffusers",
    "diffusers.*",
    "transformers",
    "transformers.*",
    "fastapi",
    "fastapi.*",
    "ray",
    "ray.*",
    "peft",
    "peft.*",
    "compel",
    "compel.*",
    "accelerate",
    "accelerate.*",
    "safetensors.torch",
)
SERVER = ("imagegen.server", "imagegen.server.*")
RAY_SIDE = ("imagegen.scale.cluster", "imagegen.scale.replica")  # the modules that need Ray at module level (Serve's deployment)
EVERYONE = ("imagegen", "imagegen.*", "assistant", "assistant.*", "dataprep", "dashboard")


@dataclass(frozen=True)
class Rule:
    id: str
    who: tuple[str, ...]  # modules the rule applies to
    may_not_import: tuple[str, ...]
    why: str
    except_who: tuple[str, ...] = ()  # modules of `who` it does not apply to
    unless: tuple[str, ...] = ()  # imports that match may_not_import but are allowed
    top_level_only: bool = False  # only imports that run when the module is imported


RULES = (
    Rule(
        "1-imagegen-is-a-leaf",
        ANY_IMAGEGEN,
        KEYART + ("streamlit", "streamlit.*", "langchain*"),
        "imagegen is the image side, a leaf: it imports nothing of keyart, never streamlit or langchain",
    ),
    Rule(
        "2-core-knows-no-images",
        CORE,
        ANY_IMAGEGEN,
        "the assistant core (models, prompting, catalog, store, policy, ...) never imports imagegen; "
        "only assistant.workflows meets the image side",
        except_who=("assistant.errors",),  # one error family: the language side's errors are KeyartErrors, so every front end catches one type
    ),
    Rule(
        "3-only-workflows-render",
        EVERYONE,
        IMAGEGEN_RUNS,
        "only assistant.workflows meets imagegen's engines and queue (or anything else that renders or "
        "writes images); front ends call a workflow",
        except_who=WORKFLOWS + ANY_IMAGEGEN,
    ),
    Rule(
        "4-front-ends-use-public-types",
        FRONT_ENDS,
        ANY_IMAGEGEN,
        "front ends may import imagegen's public types and errors only (IMAGEGEN_PUBLIC), never its "
        "engines, queue or CLI",
        unless=IMAGEGEN_PUBLIC,
    ),
    Rule(
        "5-heavy-libraries-load-late",
        EVERYONE,
        HEAVY,
        "heavy libraries are imported inside the function that needs them, so `import assistant`, "
        "`import imagegen`, every --help and the dashboard's first paint stay fast",
        except_who=SERVER + RAY_SIDE,
        top_level_only=True,
    ),
    Rule(
        "5-ray-only-on-ray",
        EVERYONE,
        RAY_SIDE + ("ray", "ray.*"),
        "nothing imports Ray unless --ray asks for it: only imagegen.scale's cluster and replica modules "
        "import it at module level, and nothing imports them at module level",
        except_who=RAY_SIDE,
        top_level_only=True,
    ),
    Rule(
        "5-ray-side-loads-only-ray-early",
        RAY_SIDE,
        HEAVY,
        "the Ray side needs ray at module level (a Serve deployment is a class Ray pickles); everything "
        "else heavy loads late there too (the engine, in the replica's constructor)",
        unless=("ray", "ray.*"),
        top_level_only=True,
    ),
    Rule(
        "5-server-loads-only-fastapi-early",
        SERVER,
        HEAVY,
        "the image service is a FastAPI app (typed routes need fastapi at module level), and nothing on "
        "the light path imports it; everything else heavy it needs loads late",
        unless=("fastapi", "fastapi.*"),
        top_level_only=True,
    ),
    Rule(
        "6-server-talks-to-the-queue",
        SERVER,
        ("imagegen.engines", "imagegen.engines.*"),
        "imagegen.server talks to the queue only; the queue's workers hold the engines",
    ),
    # The arrows' other half: nothing points back up.
    Rule(
        "7-core-points-down",
        CORE,
        FRONT_ENDS + WORKFLOWS + ("streamlit", "streamlit.*"),
        "the core is below the workflows and the front ends: it never imports them, nor streamlit",
    ),
    Rule(
        "8-workflows-serve-every-front-end",
        WORKFLOWS,
        FRONT_ENDS + ("streamlit", "streamlit.*"),
        "workflows are the one service layer for the CLI, the dashboard and HTTP: they never import a "
        "front end or streamlit",
    ),
)


# --- the checker -----------------------------------------------------------------------------------


def matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns)  # "a.*" -> "a." prefix


@dataclass(frozen=True)
class Import:
    path: str  # relative to the root, posix
    line: int
    module: str  # the module the import resolves to
    name: str  # the module, or module.name for `from module import name`
    statement: str
    scope: str  # "top level", "in def f", "in class C", "under TYPE_CHECKING"
    runs_at_import: bool  # False inside a function or under `if TYPE_CHECKING:`

    def where(self) -> str:
        return f"{self.path}:{self.line}: `{self.statement}` ({self.scope}; resolves to {self.name})"


def module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path) -> list[Path]:
    files = [root / s for s in SCRIPTS if (root / s).is_file()]
    for package in PACKAGES:
        files += sorted(p for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts)
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@functools.lru_cache(maxsize=None)
def is_module(root: Path, dotted: str) -> bool:
    """`pkg.name` is a module when pkg/name.py or pkg/name/ exists in the tree."""
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or base.is_dir()


def imports_of(path: Path, root: Path) -> list[Import]:
    """Every import statement of one file, wherever it is, resolved to absolute module names."""
    rel = path.relative_to(root)
    module = module_name(rel)
    package = module.split(".") if rel.name == "__init__.py" else module.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def add(node: ast.stmt, resolved: str, name: str, alias: ast.alias, scope: str, runs: bool) -> None:
        shown = ast.unparse(type(node)(**{**{f: getattr(node, f) for f in node._fields}, "names": [alias]}))
        found.append(Import(rel.as_posix(), node.lineno, resolved, name, shown, scope, runs))

    def walk(body: list[ast.stmt], scope: str, runs: bool) -> None:
        # Imports are statements, so only statement lists need visiting; expressions hold none.
        for node in body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(node, alias.name, alias.name, alias, scope, runs)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    up = node.level - 1
                    assert up <= len(package), f"{rel}:{node.lineno}: relative import reaches above the root"
                    base = ".".join(package[: len(package) - up] + (node.module.split(".") if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    full = f"{base}.{alias.name}" if base else alias.name
                    resolved = full if alias.name != "*" and is_module(root, full) else base
                    add(node, resolved, full, alias, scope, runs)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                walk(node.body, f"in def {node.name}", False)  # decorators and defaults hold no statements
            elif isinstance(node, ast.ClassDef):
                walk(node.body, f"in class {node.name}" if scope == "top level" else scope, runs)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                walk(node.body, "under TYPE_CHECKING", False)
                walk(node.orelse, scope, runs)
            else:  # if/for/while/with/try/match: their blocks run where the statement runs
                for field in ("body", "orelse", "finalbody"):
                    walk(getattr(node, field, []), scope, runs)
                for block in getattr(node, "handlers", []) + getattr(node, "cases", []):
                    walk(block.body, scope, runs)

    walk(tree.body, "top level", True)
    return found


def modules_of(root: Path) -> dict[str, Path]:
    return {module_name(p.relative_to(root)): p for p in source_files(root)}


def violations(rule: Rule, root: Path, parse=imports_of) -> list[str]:
    found = []
    for module, path in modules_of(root).items():
        if not matches(module, rule.who) or matches(module, rule.except_who):
            continue
        for imp in parse(path, root):
            if rule.top_level_only and not imp.runs_at_import:
                continue
            names = (imp.module, imp.name)
            if any(matches(n, rule.may_not_import) for n in names) and not any(matches(n, rule.unless) for n in names):
                found.append(f"{imp.where()}\n    rule {rule.id}: {rule.why}")
    return found


repo_imports = functools.lru_cache(maxsize=None)(imports_of)  # the repository is parsed once, for all rules
