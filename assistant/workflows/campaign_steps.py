"""The campaign chain's steps, one at a time: build a step's input, run it, check it, keep it.

A step reruns when the run starts at or before it (for the chosen platform) or when it has no output
yet; otherwise its output, edited or not, is kept. Copy and prompts pass the brand-safety check first.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagegen.errors import KeyartError

from ..catalog import Catalog
from ..errors import ReplyInvalid
from ..references import CatalogIndex, Reference
from ..models import is_offline, label
from ..platforms import PLATFORMS, post_text
from ..policy import Verdict, blocklist, check
from ..prompting.campaign import write_copy, write_image_brief, write_prompt, write_strategy
from ..schemas import Trace
from ..store import SEASON_ART, digest, now, resolve_home, stored_art
from .campaign_state import STEPS, Blocked, Brief, Campaign, CampaignError, Grounding, PostImage, save
from .catalog_guides import Guide, catalog_guide, catalog_image, named_image
from .plan import RenderSettings, catalog_seed
from .prompts import catalog_prompts, style_specs
from .service import RenderService

log = logging.getLogger(__name__)
IMAGES = "images"
MOTION = "motion"  # <campaign>/motion/<platform>/: a motion post's frames, MP4, GIF and sidecar
MOTION_FRAMES, MOTION_FPS = 24, 12  # a two-second loop, as Reels and TikTok autoplay it
MOTION_ZOOM = 1.04  # the push-in over the loop: felt, not dizzying
MOTION_STRENGTH = 0.45  # each frame repaints this much of the moved one
EXPORT = "export"  # where the last brand-safety check runs, after every step
BRIEF_FIELDS = {"goal", "audience", "tone", "call_to_action", "use_words", "avoid_words"}


@dataclass
class Tools:
    """What a run uses besides the campaign: its folder, the language model, the engine, the catalog."""

    folder: Path
    model: Any
    slot: RenderService
    catalog: Catalog
    home: Path | None = None  # the catalog store to ground on (None: KEYART_HOME, else data/home)
    quality: str = "final"
    refiner: str = "auto"  # "auto" | "on" | "off", as RenderSettings
    overrides: dict[str, Any] = field(default_factory=dict)  # render fields besides the size (steps, sampler...)
    max_concurrency: int = 5  # language-model requests at once
    progress: Callable[[str, str | None, str, str], None] | None = None  # (step, platform, outcome, detail)


# -- what the campaign is about ------------------------------------------------------------------


def source_of(campaign: Campaign, catalog: Catalog) -> dict[str, Any]:
    """The episode (or the season with its episodes) the brief names, as data for the steps."""
    b = campaign.brief
    if b.show and b.show.casefold() != catalog.show.casefold():
        raise CampaignError(f"the brief is for {b.show!r} but the catalog ({catalog.path}) is {catalog.show!r}; pass --input with {b.show}'s catalog")
    if b.episode is not None:
        e = catalog.episode(b.season, b.episode)
        return {"kind": "episode", "show": catalog.show, "season": b.season, "episode": b.episode, "title": e.title, "summary": e.summary}
    s, episodes = catalog.season(b.season), catalog.episodes_of(b.season)
    listed = [{"episode": e.episode, "title": e.title, "summary": e.summary} for e in episodes]
    return {"kind": "season", "show": catalog.show, "season": b.season, "episode": None, "title": s.title, "summary": s.summary, "episodes": listed}


def catalog_art(home: Path, show: str, season: int, episode: int, style: str) -> Grounding | None:
    """The catalog's prompt (and image seed) for this piece of art in this style, when dataprep has made it."""
    art = stored_art(home, show, season, episode, style)
    given = art.styled(style) if art is not None else None
    if given is None:
        return None
    image, result = art.image, art.result
    return Grounding(
        source="catalog", brief=result["brief"], prompt=given["prompt"], negative_prompt=given.get("negative_prompt", ""),
        seed=image["seed"] if image else catalog_seed(show, season, episode, style), llm=result["trace"]["model"],
        prompt_key=art.entry.prompt_key, image=str(home / image["path"]) if image else None,
    )  # fmt: skip


def brief_reference(brief: Brief, catalog: Catalog, home: Path) -> tuple[Reference, str] | None:
    """(the episode or season, what of it to keep) of the brief's `reference`, checked to be rendered art in `home`; None without one."""
    if not brief.reference.strip():
        return None
    try:
        ref, subject = named_image(CatalogIndex(catalog), brief.reference, season=brief.season)
        catalog_image(home, catalog, ref, style=brief.style)
    except KeyartError as exc:
        raise CampaignError(f"the brief's reference: {exc}") from None
    return ref, subject


def order(step: str) -> int:
    """A step's place in the chain; the export check comes after every step."""
    return STEPS.index(step) if step in STEPS else len(STEPS)


# -- one session: a run over one campaign --------------------------------------------------------


class Session:
    """A run's view of the campaign: what to redo, each step's input, and saving after every step."""

    def __init__(self, campaign: Campaign, tools: Tools, *, from_step: str | None, only: str | None):
        self.campaign, self.tools, self.from_step, self.only = campaign, tools, from_step, only
        self.lock = threading.RLock()  # steps of different platforms finish on different threads
        self.source = source_of(campaign, tools.catalog)
        self.home = resolve_home(tools.home)
        self.checker = "blocklist" if is_offline(tools.model) else f"blocklist + {label(tools.model)}"
        named = brief_reference(campaign.brief, tools.catalog, self.home)
        self.guide: Guide | None = None
        if named is not None:  # every post's image keeps this catalog image
            self.guide = catalog_guide(self.home, tools.catalog, named[0], tools.slot, style=campaign.brief.style, subject=named[1])

    def tell(self, step: str, platform: str | None, outcome: str, detail: str = "") -> None:
        log.info("%s %s: %s %s", step, platform or "", outcome, detail)
        if self.tools.progress is not None:
            self.tools.progress(step, platform, outcome, detail)

    def save(self) -> None:
        with self.lock:
            save(self.campaign, self.tools.folder)

    def redo(self, step: str, platform: str | None = None) -> bool:
        """Missing outputs are always made; otherwise only the run's first step and later, for its platform."""
        if self.campaign.record(step, platform).output is None:
            return True
        if self.from_step is None or STEPS.index(step) < STEPS.index(self.from_step):
            return False
        return self.only is None or platform is None or platform == self.only

    # -- inputs ---------------------------------------------------------------------------------

    def build_input(self, step: str, platform: str | None) -> dict[str, Any]:
        c, b = self.campaign, self.campaign.brief
        brief = b.model_dump(include=BRIEF_FIELDS)
        if step == "grounding":
            return {"show": self.source["show"], "season": b.season, "episode": b.episode, "style": b.style, "home": str(self.home)}
        if step == "strategy":
            return {"brief": brief | {"platforms": b.platforms}, "source": self.source}
        where = PLATFORMS[platform].describe()
        if step == "copy":
            source = {k: v for k, v in self.source.items() if k != "episodes"}
            return {"brief": brief, "strategy": c.output("strategy").model_dump(), "source": source, "platform": where}
        g = c.output("grounding")
        grounding = {"source": g.source, "prompt": g.prompt, "negative_prompt": g.negative_prompt}
        if step == "image_brief":
            strategy = c.output("strategy").model_dump(include={"angle", "key_message"})
            post = c.output("copy", platform).model_dump()
            return {"strategy": strategy, "post": post, "platform": where, "grounding": grounding | {"brief": g.brief.model_dump()}, "tone": b.tone}
        if step == "prompt":
            [style] = style_specs([b.style])
            return {"image_brief": c.output("image_brief", platform).model_dump(), "style": style.model_dump(), "grounding": grounding, "platform": where}
        p = c.output("prompt", platform)
        guide = {"guide": self.guide.model_dump(mode="json")} if self.guide else {}
        guide |= {"motion": True} if platform in b.motion else {}
        return {"prompt": p.prompt, "negative_prompt": p.negative_prompt, "style": b.style, "width": where["width"], "height": where["height"],
                "seed": g.seed, "quality": self.tools.quality, "refiner": self.tools.refiner, "overrides": dict(self.tools.overrides), **guide}  # fmt: skip

    def input_for(self, step: str, platform: str | None) -> tuple[dict[str, Any], str, bool]:
        """(input, digest as built, edited): the run's first step keeps an input edited by hand in campaign.json."""
        built = self.build_input(step, platform)
        record, built_digest = self.campaign.record(step, platform), digest(built)
        edited = step == self.from_step and bool(record.input) and bool(record.input_digest) and digest(record.input) != record.input_digest
        return (record.input if edited else built), built_digest, edited

    # -- brand safety ---------------------------------------------------------------------------

    def verdict(self, text: str, what: str) -> dict[str, Any]:
        """The policy's verdict on `text`, remembered by text, checker and blocklist (an edited blocklist checks again)."""
        key = digest([text, self.checker, blocklist()])
        with self.lock:
            if key in self.campaign.checks:
                return self.campaign.checks[key]
        try:
            found = check(text, what=what, model=self.tools.model)
        except ReplyInvalid as exc:  # the judge's reply stayed unusable: hold the text back rather than pass it unjudged
            found = Verdict(False, reason=f"the brand-safety check could not judge it ({exc})", checked_by=self.checker)
        result = {"allowed": found.allowed, "reason": found.explain(what), "checked_by": found.checked_by}
        with self.lock:
            self.campaign.checks[key] = result
        return result

    def texts(self, platform: str, steps: tuple[str, ...] = ("copy", "prompt")) -> list[tuple[str, str, str]]:
        """(step, what, text) of a post's copy and image prompt, as far as they are written."""
        title, out = PLATFORMS[platform].title, []
        if "copy" in steps and self.campaign.record("copy", platform).output is not None:
            copy = self.campaign.output("copy", platform)
            out.append(("copy", f"{title} copy", post_text(copy.text, copy.hashtags)))
        if "prompt" in steps and self.campaign.record("prompt", platform).output is not None:
            out.append(("prompt", f"{title} image prompt", self.campaign.output("prompt", platform).prompt))  # never the negative
        return out

    def gate(self, platform: str, step: str, texts: list[tuple[str, str, str]]) -> bool:
        """True when every text passes; else the post is blocked at `step` with the reason, and its later work undone."""
        for _, what, text in texts:
            found = self.verdict(text, what)
            if not found["allowed"]:
                self.block(platform, Blocked(step=step, what=what, reason=found["reason"]))
                return False
        return True

    def block(self, platform: str, blocked: Blocked) -> None:
        with self.lock:
            post = self.campaign.posts[platform]
            post.blocked = blocked
            for later in {*STEPS[order(blocked.step) + 1 :], "image"}:  # a blocked post has no image to publish
                post.steps[later].output = None
            (self.tools.folder / IMAGES / f"{platform}.png").unlink(missing_ok=True)
        self.save()
        self.tell(blocked.step, platform, "blocked", blocked.reason)

    # -- running a step -------------------------------------------------------------------------

    def run_step(self, step: str, platform: str | None = None) -> None:
        """Redo `step` (for `platform`) if the plan says so: input, work, brand safety, then saved."""
        post = self.campaign.posts.get(platform) if platform else None
        if not self.redo(step, platform):
            self.tell(step, platform, "kept")
            return
        if post is not None and post.blocked is not None:
            if order(post.blocked.step) < order(step):
                self.tell(step, platform, "skipped", f"blocked at {post.blocked.step}")
                return
            with self.lock:
                post.blocked = None  # redone at or before where it was blocked: judged again
        record = self.campaign.record(step, platform)
        # 1. The input: built from the brief and earlier outputs, or as edited by hand.
        data, built_digest, edited = self.input_for(step, platform)
        try:
            # 2. Brand safety before a render: the copy and prompt as they stand now (edits included).
            if step == "image" and not self.gate(platform, "image", self.texts(platform)):
                return
            # 3. The work.
            output, trace, notes = STEP_WORK[step](self, data, platform)
            # 4. Kept, with how it was made, and saved at once: a crash later loses nothing.
            with self.lock:
                record.input, record.input_digest, record.edited_input = data, built_digest, edited
                record.output, record.trace, record.notes, record.error = output.model_dump(mode="json"), trace, notes, None
                record.runs, record.ran_at = record.runs + 1, now()
            self.save()
            # 5. Brand safety on what was just written: a blocked post stops here, the others go on.
            if step in ("copy", "prompt") and not self.gate(platform, step, self.texts(platform, (step,))):
                return
        except KeyartError as exc:
            with self.lock:
                record.error, record.ran_at = str(exc), now()
            self.save()
            self.tell(step, platform, "failed", str(exc))
            raise
        self.tell(step, platform, "done", "used the input edited in campaign.json" if edited else "")


# -- the work of each step -----------------------------------------------------------------------


def _grounding(session: Session, data: dict[str, Any], _: str | None) -> tuple[Grounding, Trace | None, list[str]]:
    """The catalog's art for this episode (or season) and style; else written now, as dataprep would."""
    home, catalog = Path(data["home"]), session.tools.catalog
    number = data["episode"] or SEASON_ART
    found = catalog_art(home, data["show"], data["season"], number, data["style"])
    if found is not None:
        return found, None, [f"from the catalog in {home}: prompt {found.prompt_key[:12]}, seed {found.seed}" + (", rendered" if found.image else "")]
    written = catalog_prompts(catalog, data["season"], data["episode"] or None, style_specs([data["style"]]), session.tools.model)
    p = written.prompt_for(data["style"])
    grounding = Grounding(
        source=written.trace.technique, brief=written.brief, prompt=p.prompt, negative_prompt=p.negative_prompt,
        seed=catalog_seed(data["show"], data["season"], number, data["style"]), llm=written.trace.label,
    )  # fmt: skip
    return grounding, written.trace, [f"no catalog art in {home} for this {data['style']} piece; written now by {written.trace.technique}"]


def _render(session: Session, data: dict[str, Any], platform: str) -> tuple[PostImage, None, list[str]]:
    """The post's image at the platform's size, on the catalog seed, written with its lineage."""
    from imagegen.png_files import write_png

    c, slot = session.campaign, session.tools.slot
    overrides = {k: v for k, v in data.get("overrides", {}).items() if k not in ("width", "height")}  # the platform's size wins
    settings = RenderSettings(quality=data["quality"], refiner=data.get("refiner", "auto"), overrides=overrides)
    request = settings.request(
        session.source["kind"], prompt=data["prompt"], negative_prompt=data["negative_prompt"], style=data["style"], seed=data["seed"],
        size=(data["width"], data["height"]),
    )  # fmt: skip
    guide = Guide.model_validate(data["guide"]) if data.get("guide") else None
    if guide is not None:  # the brief's catalog image: the IP-Adapter's reference, or the img2img start at the post's size
        request = guide.apply(request)
    grounding = c.output("grounding")
    lineage = {
        "show": session.source["show"], "season": c.brief.season, "episode": c.brief.episode, "title": session.source["title"],
        "kind": "campaign", "style": data["style"], "technique": "campaign", "llm": c.llm, "campaign": c.id, "platform": platform,
        "aspect": PLATFORMS[platform].aspect.ratio, "brief": c.brief.model_dump(mode="json"),
        "grounding": {"source": grounding.source, "prompt_key": grounding.prompt_key, "seed": grounding.seed},
        "trace": (t.model_dump(mode="json") if (t := c.record("prompt", platform).trace) else None),
        "guide": guide.lineage() if guide else None,
    }  # fmt: skip
    [image] = slot.render(request, lineage=lineage)
    path = write_png(image, session.tools.folder / IMAGES / f"{platform}.png")
    notes = ["an offline preview card, not an SDXL render"] if slot.name == "preview" else []
    notes += [f"drawn {guide.said()}"] if guide else []
    out = PostImage(path=f"{IMAGES}/{path.name}", width=request.width, height=request.height, seed=image.seed, engine=slot.name, model=slot.model, preview=slot.name == "preview")
    if data.get("motion"):  # a motion post: an animation from the catalog art (else this still) under the post's prompt
        made = _motion(session, platform, image.request, image.seed, grounding.image or str(path))
        out.video, out.gif = (made.video.relative_to(session.tools.folder).as_posix(), made.gif.relative_to(session.tools.folder).as_posix())
        notes.append(f"a motion post: {made.request.frames} frames at {made.request.fps:g} fps from {'the catalog art' if grounding.image else 'this still'}")
    return out, None, notes


def _motion(session: Session, platform: str, still, seed: int, first: str):
    """The post's animation: the still's prompt, style, size and settings over MOTION_FRAMES frames, a slow push-in, from `first`."""
    from imagegen.animation import AnimationRequest

    folder = session.tools.folder / MOTION / platform
    shutil.rmtree(folder, ignore_errors=True)  # the image step is being redone: its animation is too
    render = {k: getattr(still, k) for k in ("num_inference_steps", "guidance_scale", "sampler", "schedule_type", "refiner", "refiner_switch_at")}
    request = AnimationRequest(
        prompts=still.prompt, frames=MOTION_FRAMES, fps=MOTION_FPS, width=still.width, height=still.height, negative_prompt=still.negative_prompt,
        style=still.style, motion={"zoom": f"0:(1.0), {MOTION_FRAMES - 1}:({MOTION_ZOOM})"}, strength=str(MOTION_STRENGTH), seed=seed,
        init_image=str(Path(first).absolute()), render=render,
    )  # fmt: skip
    return session.tools.slot.animate(request, folder)


STEP_WORK: dict[str, Callable[[Session, dict[str, Any], str | None], tuple[Any, Trace | None, list[str]]]] = {
    "grounding": _grounding,
    "strategy": lambda s, data, _: (*write_strategy(data, s.tools.model), []),
    "copy": lambda s, data, _: (*write_copy(data, s.tools.model), []),
    "image_brief": lambda s, data, _: (*write_image_brief(data, s.tools.model), []),
    "prompt": lambda s, data, _: (*write_prompt(data, s.tools.model), []),
    "image": _render,
}
