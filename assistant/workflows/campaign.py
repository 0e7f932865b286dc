"""The campaign chain: brief -> strategy -> per-platform copy -> image brief -> SDXL prompt -> render -> package.

Independent branches run side by side as LangChain runnables: the catalog grounding beside the
strategy, and each platform's language steps beside the other platforms'. Renders take turns on the
one engine. Every step is kept in campaign.json, so a rerun from a step redoes only that step and
the ones after it (for one platform, if asked), keeping earlier outputs, edited ones included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imagegen.errors import KeyartError

from ..catalog import Catalog
from ..models import label
from ..platforms import platform as platform_named
from ..policy import check_blocklist
from ..store import check_home, resolve_home
from .campaign_package import export
from .campaign_state import (
    POST_STEPS,
    SHARED,
    STATE_FILE,
    STEPS,
    Brief,
    Campaign,
    CampaignError,
    brief_from,
    load,
    load_brief,
    save,
)
from .campaign_steps import Session, Tools, brief_reference, source_of

__all__ = [
    "POST_STEPS", "SHARED", "STATE_FILE", "STEPS", "Brief", "Campaign", "CampaignError", "Tools",
    "brief_from", "check_ready", "load", "load_brief", "make_campaign", "new_campaign", "run", "save",
]  # fmt: skip


def new_campaign(brief: Brief) -> Campaign:
    """A campaign for `brief` with every step still to do."""
    campaign = Campaign(brief=brief)
    campaign.sync()
    return campaign


def check_ready(campaign: Campaign, catalog: Catalog, home: str | Path | None, folder: str | Path | None = None) -> None:
    """What the chain uses, checked before campaign.json is written: the brief's show, season and
    episode in the catalog, the blocklist, the home with its catalog store (when it has one), and
    the campaign's folder (no file in its way). Nothing is created."""
    source_of(campaign, catalog)
    check_blocklist()
    check_home(resolve_home(home))
    brief_reference(campaign.brief, catalog, resolve_home(home))  # a catalog image to keep that is not rendered yet
    if folder is not None:
        from imagegen.png_files import writable_folder

        writable_folder(folder, "--output", "the campaign")  # a file in its way, a read-only folder: said now, nothing left behind


def _concurrency(model: Any, wanted: int) -> int:
    # A local transformers model generates on one device: threads would only queue for it.
    return 1 if label(model).startswith("transformers:") else max(1, wanted)


def _link(session: Session, step: str) -> Any:
    """One link of a post's chain: runs `step` for the platform it is given and hands the platform on."""
    from langchain_core.runnables import RunnableLambda

    def one(platform: str) -> str:
        session.run_step(step, platform)
        return platform

    return RunnableLambda(one, name=step)


def run(campaign: Campaign, tools: Tools, *, from_step: str | None = None, platform: str | None = None) -> Campaign:
    """Make what is missing; with `from_step`, redo that step and every later one (for `platform` only, if given).

    Saves campaign.json after every step and writes the package at the end. A post that fails or is
    blocked is recorded and the others go on; when every post fails, the first error is raised.
    """
    from langchain_core.runnables import RunnableLambda, RunnableParallel

    # 1. What to redo, checked before any work.
    if from_step is not None and from_step not in STEPS:
        raise CampaignError(f"unknown step {from_step!r}; the chain's steps are {', '.join(STEPS)}")
    only = None
    if platform is not None:
        try:
            only = platform_named(platform).name
        except ValueError as exc:
            raise CampaignError(str(exc)) from None
        if only not in campaign.brief.platforms:
            raise CampaignError(f"the brief has no {only} post; its platforms are {', '.join(campaign.brief.platforms)}")
        if from_step in SHARED:
            raise CampaignError(f"{from_step} is shared by every platform; rerun it without --platform, or pick a later step ({', '.join(POST_STEPS)})")
    check_ready(campaign, tools.catalog, tools.home, tools.folder)
    campaign.sync()
    campaign.llm, campaign.engine = label(tools.model), tools.slot.name
    session = Session(campaign, tools, from_step=from_step, only=only)
    session.save()
    # 2. The shared steps side by side: the catalog grounding (a store look-up, or meta-prompting) and the strategy.
    shared = {step: RunnableLambda(lambda _, step=step: session.run_step(step)) for step in SHARED}
    RunnableParallel(shared).invoke({}, config={"max_concurrency": 2})
    # 3. Each platform's language steps in a chain, the platforms side by side.
    posts = _link(session, "copy") | _link(session, "image_brief") | _link(session, "prompt")
    results = posts.batch(list(campaign.posts), config={"max_concurrency": _concurrency(tools.model, tools.max_concurrency)}, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if unexpected := [f for f in failures if not isinstance(f, KeyartError)]:
        raise unexpected[0]
    if failures and len(failures) == len(results):
        raise failures[0]
    # 4. The renders, one at a time on the one engine; a failed render is recorded and the others go on.
    for name, post in campaign.posts.items():
        if post.blocked is None and post.steps["prompt"].output is None:
            session.tell("image", name, "skipped", "its language steps did not finish")
            continue
        try:
            session.run_step("image", name)
        except KeyartError:
            continue  # recorded in the post's image step
    # 5. The package: the last brand-safety check, posts.md, posts.csv, images, campaign.json, campaign.zip.
    export(session)
    return campaign


def make_campaign(brief: Brief | str | Path, folder: str | Path, *, model: Any = None, engine: Any = "auto", catalog: Any = None, **options: Any) -> Campaign:
    """A whole campaign in `folder` from a brief (or its YAML file): offline model, `auto` engine and the sample show by default.

    `engine` is an engine name or an engine object; `options` go to `Tools` (home, quality, ...).
    """
    from ..catalog import load_catalog
    from ..models import load_model
    from .service import RenderService

    brief = brief if isinstance(brief, Brief) else load_brief(brief)
    slot = RenderService(name=engine) if isinstance(engine, str) else RenderService(engine)
    model = model if model is not None else load_model()
    tools = Tools(folder=Path(folder), model=model, slot=slot, catalog=catalog or load_catalog(), **options)
    return run(new_campaign(brief), tools)
