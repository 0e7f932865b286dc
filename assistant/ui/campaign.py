"""The Campaign tab: a brief in; the chain's steps as they finish; each step editable and rerun from; the posts previewed per platform; the zip.

Thin over assistant.workflows.campaign: the chain runs on a worker thread while the page shows its
progress hook's events. Every campaign lives in <home>/campaigns/<id>/, as the shell's would.
The post cards and the package's download are drawn by campaign_cards.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Any

import streamlit as st

from imagegen import styles
from imagegen.errors import KeyartError

from ..platforms import PLATFORMS
from ..workflows.campaign import POST_STEPS, SHARED, STATE_FILE, Brief, Campaign, CampaignError, brief_from, load, new_campaign, save
from ..workflows.campaign_state import OUTPUTS, describe
from ..workflows.campaign_steps import EXPORT, order
from . import common
from .campaign_cards import package_download, previews

CAMPAIGNS = "campaigns"  # <home>/campaigns/<id>/
WHOLE_SEASON = 0  # the episode picker's "Whole season"
LISTED = 50  # past campaigns offered in the picker, newest first
EDITABLE = ("strategy", "copy", "image_brief", "prompt")
TITLES = {"grounding": "Grounding", "strategy": "Strategy", "copy": "Copy", "image_brief": "Image brief", "prompt": "Prompt", "image": "Image", EXPORT: "Package"}
ICONS = {"done": ":material/check_circle:", "kept": ":material/check:", "blocked": ":material/block:", "failed": ":material/error:", "skipped": ":material/skip_next:"}
EDITED = "edited in the dashboard"  # the note an edited step's record carries
FIELDS = {"text": "Copy", "key_message": "Key message", "negative_prompt": "Negative prompt"}  # labels besides the field's own name

_RUNNING: dict[str, threading.Thread] = {}  # campaign folder -> the chain's thread, across reruns and sessions


def render() -> None:
    try:
        catalog = common.current_catalog()
    except KeyartError as exc:
        common.show_error(exc)
        return
    home = Path(common.settings()["home"])
    brief = _brief_form(catalog)
    if brief is not None:
        _create(brief, home)
    folder = _pick(home)
    if folder is None:
        st.caption("No campaign yet: fill in the brief and press Create campaign.")
        return
    _show(folder, home)


# -- the brief ------------------------------------------------------------------------------------


def _brief_form(catalog: Any) -> Brief | None:
    """The brief as the form holds it, once "Create campaign" is pressed (None before, or when it does not fit)."""
    defaults, names = Brief(), styles.names()
    with st.container(border=True):
        st.markdown("**Brief**")
        # Season and episode sit outside the form: the episodes offered follow the season.
        left, middle, right = st.columns(3)
        show = left.selectbox("Show", [catalog.show], key="campaign_show")
        season = middle.selectbox("Season", catalog.season_numbers(), key="campaign_season", format_func=lambda n: _season_title(catalog, n))
        titles = {e.episode: e.title for e in catalog.episodes if e.season == season}
        episode = right.selectbox(
            "Episode", [WHOLE_SEASON, *titles], key="campaign_episode",
            format_func=lambda n: "Whole season" if n == WHOLE_SEASON else f"E{n:02d} {titles[n]}",
        )  # fmt: skip
        with st.form("campaign_brief", border=False):
            goal = st.text_input("Goal", defaults.goal, key="campaign_goal")
            left, right = st.columns(2)
            audience = left.text_input("Audience", defaults.audience, key="campaign_audience")
            tone = right.text_input("Tone", defaults.tone, key="campaign_tone")
            platforms = st.multiselect("Platforms", list(PLATFORMS), default=defaults.platforms, format_func=lambda p: PLATFORMS[p].title, key="campaign_platforms")
            left, right = st.columns(2)
            action = left.text_input("Call to action", defaults.call_to_action, key="campaign_cta")
            style = right.selectbox("Style", names, index=names.index(defaults.style) if defaults.style in names else 0, key="campaign_style")
            left, right = st.columns(2)
            use = left.text_input("Words to use", key="campaign_use", help="comma-separated; every post uses them")
            avoid = right.text_input("Words to avoid", key="campaign_avoid", help="comma-separated; no post uses them")
            motion = st.multiselect(
                "Motion posts", ["tiktok", "instagram"], key="campaign_motion", format_func=lambda p: PLATFORMS[p].title,
                help="These posts get a two-second animated loop beside the still, from the episode's catalog art",
            )  # fmt: skip
            reference = st.text_input(
                "Catalog image to keep", key="campaign_reference", placeholder="the same harbour as in S01E03",
                help="an episode's still or a season's poster every post's image keeps: an IP-Adapter reference when one is configured, else the img2img start",
            )  # fmt: skip
            pressed = st.form_submit_button("Create campaign", type="primary", icon=":material/campaign:")
    if not pressed:
        return None
    data = {
        "show": show, "season": season, "episode": episode or None, "goal": goal, "audience": audience, "tone": tone,
        "platforms": platforms, "call_to_action": action, "use_words": use, "avoid_words": avoid, "style": style, "reference": reference, "motion": motion,
    }  # fmt: skip
    try:
        return brief_from(data, where="the brief")
    except CampaignError as exc:
        common.show_error(exc)
        return None


def _season_title(catalog: Any, number: int) -> str:
    title = next((s.title for s in catalog.seasons if s.season == number and s.title), "")
    return f"Season {number}" + (f": {title}" if title else "")


# -- running the chain ----------------------------------------------------------------------------


def _create(brief: Brief, home: Path) -> None:
    campaign = new_campaign(brief)
    folder = home / CAMPAIGNS / campaign.id
    _run(campaign, folder, home, f"Creating the {brief.label} campaign")
    if (folder / STATE_FILE).is_file():  # shown even when it stopped part-way: each step says how it went
        st.session_state["campaign_id"] = campaign.id


def _run(campaign: Campaign, folder: Path, home: Path, label: str, *, from_step: str | None = None, platform: str | None = None) -> None:
    """Run the chain on a worker thread; its progress hook's events become a bar and one line per step; its error, a message."""
    from ..workflows.campaign import Tools, run

    s = common.settings()
    events: queue.Queue[tuple[str, str | None, str, str]] = queue.Queue()
    try:
        tools = Tools(
            folder=folder, model=common.language_model(s["llm"]), slot=common.render_service(s["engine"], s["home"]), catalog=common.current_catalog(),
            home=home, quality=s["quality"], progress=lambda *event: events.put(event),
        )  # fmt: skip
    except KeyartError as exc:
        common.show_error(exc)
        return
    # 1. The chain on its own thread: its steps report from several threads, and only this one may draw.
    failure: list[BaseException] = []

    def work() -> None:
        try:
            run(campaign, tools, from_step=from_step, platform=platform)
        except BaseException as exc:  # noqa: BLE001  (not swallowed: handed to the page's thread, which shows a KeyartError and raises the rest)
            failure.append(exc)

    thread = threading.Thread(target=work, name=f"campaign-{campaign.id}", daemon=True)
    _RUNNING[str(folder)] = thread
    thread.start()
    # 2. Each step as it finishes; every step reports once per platform (kept ones too), then the package.
    total, seen = len(SHARED) + len(POST_STEPS) * len(campaign.posts) + 1, 0
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="Starting")
        while thread.is_alive() or not events.empty():
            try:
                step, where, outcome, detail = events.get(timeout=0.1)
            except queue.Empty:
                continue
            seen += 1
            what = _what(step, where)
            bar.progress(min(seen / total, 1.0), text=f"{what}: {outcome}")
            if outcome != "kept":
                st.markdown(f"{ICONS.get(outcome, '')} **{what}** {outcome}" + (f": {common.plain(detail)}" if detail and outcome != "done" else ""))
        thread.join()
        _RUNNING.pop(str(folder), None)
        bar.progress(1.0, text="Finished" if not failure else "Stopped")
        status.update(label=f"{label}: {'stopped' if failure else 'done'}", state="error" if failure else "complete", expanded=bool(failure))
    if failure:
        if not isinstance(failure[0], KeyartError):
            raise failure[0]
        common.show_error(failure[0])


def _what(step: str, platform: str | None) -> str:
    return TITLES.get(step, step) + (f" · {PLATFORMS[platform].title}" if platform in PLATFORMS else "")


# -- which campaign -------------------------------------------------------------------------------


def _pick(home: Path) -> Path | None:
    """The campaign to show: this session's latest, or one picked from the home's campaigns (newest first)."""
    root = home / CAMPAIGNS
    found = sorted(root.glob(f"*/{STATE_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)[:LISTED] if root.is_dir() else []
    ids = [p.parent.name for p in found]
    if not ids:
        return None
    labels = {p.parent.name: _listing(p) for p in found}
    current = st.session_state.get("campaign_id")
    index = ids.index(current) if current in ids else 0
    st.session_state["campaign_id"] = st.selectbox("Campaign", ids, index=index, format_func=labels.__getitem__)
    return root / st.session_state["campaign_id"]


def _listing(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        b = data["brief"]
        what = f"S{b['season']:02d}E{b['episode']:02d}" if b.get("episode") else f"season {b['season']}"
        return f"{what} · {b.get('style', '')} · {data.get('created', '')[:16].replace('T', ' ')} · {path.parent.name}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"{path.parent.name} (campaign.json unreadable)"


# -- one campaign ---------------------------------------------------------------------------------


def _show(folder: Path, home: Path) -> None:
    try:
        campaign = load(folder)
    except CampaignError as exc:
        common.show_error(exc)
        return
    # 1. A "Rerun from here" pressed in the last run: keep the edits before that step, then run from it.
    busy = (t := _RUNNING.get(str(folder))) is not None and t.is_alive()
    asked = st.session_state.pop("campaign_rerun", None)
    if asked and asked["id"] == campaign.id and not busy:
        step, platform = asked["step"], asked["platform"]
        try:
            _keep_edits(campaign, folder, asked["edits"], step, platform)
        except CampaignError as exc:
            common.show_error(exc)
        else:
            scope = f" of the {PLATFORMS[platform].title} post" if platform else ""
            _run(campaign, folder, home, f"Rerunning from the {TITLES[step].lower()}{scope}", from_step=step, platform=platform)
            campaign = load(folder)
    if busy:
        st.info("This campaign's chain is still running (started before this page's last rerun, or in another session); rerun the page to see its latest steps.", icon=":material/hourglass_top:")
    # 2. What it is, the steps, the posts, the package.
    _summary(campaign)
    _steps(campaign, folder, busy)
    previews(campaign, folder, TITLES)
    package_download(campaign, folder)


def _summary(campaign: Campaign) -> None:
    b = campaign.brief
    written = "offline rules (no language model)" if campaign.llm == "offline" else campaign.llm
    st.markdown(f"**{common.plain(b.show or 'The show')} {b.label}** · {b.style} style · written by {common.plain(written)} · images by {campaign.engine}")
    if campaign.engine == "preview":
        st.caption("Images are offline preview cards, not SDXL renders: set KEYART_SDXL_MODEL (and the sdxl engine in Settings) to render.")


def _steps(campaign: Campaign, folder: Path, busy: bool) -> None:
    """The chain's steps in order, each in an expander: the strategy, then each post step with a tab per platform."""
    st.markdown("**The chain's steps**: edit any text, then press *Rerun from here* on a later step; your edits before that step are kept.")
    strategy = campaign.steps["strategy"]
    with st.expander(f"{TITLES['strategy']} · {_state(strategy)}", icon=":material/lightbulb:"):
        if campaign.steps["grounding"].output is not None:
            g = campaign.steps["grounding"].output
            where = f"the catalog's art (seed {g['seed']})" if g["source"] == "catalog" else f"a prompt written now by {g['source']} (seed {g['seed']})"
            st.caption(f"Images start from {where}.")
        _editor(campaign, None, "strategy", busy)
    for step in POST_STEPS:
        counts: dict[str, int] = {}
        for name, post in campaign.posts.items():
            held = post.blocked is not None and (order(post.blocked.step) <= order(step) or step == "image")  # a blocked post has no image
            state = "blocked" if held else _state(post.steps[step])
            counts[state] = counts.get(state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in counts.items())
        with st.expander(f"{TITLES[step]} · {summary}", icon=":material/image:" if step == "image" else ":material/edit_note:"):
            for tab, name in zip(st.tabs([PLATFORMS[p].title for p in campaign.posts]), campaign.posts):
                with tab:
                    if step == "image":
                        _image_step(campaign, folder, name, busy)
                    else:
                        _editor(campaign, name, step, busy)


def _state(record: Any) -> str:
    return "failed" if record.error else "not made" if record.output is None else "edited" if EDITED in record.notes else "done"


def _key(campaign: Campaign, platform: str | None, step: str, field: str = "") -> str:
    """A step's widget key; it carries the step's run count, so a rerun shows the new output in a fresh widget."""
    runs = campaign.record(step, platform).runs
    return f"cmp:{campaign.id}:{platform or '-'}:{step}:{runs}:{field}"


def _editor(campaign: Campaign, platform: str | None, step: str, busy: bool) -> None:
    """The step's output as text areas (lists one item a line, nested parts as YAML), how it ran, and its rerun button."""
    record, post = campaign.record(step, platform), campaign.posts.get(platform) if platform else None
    if post is not None and post.blocked is not None and order(post.blocked.step) < order(step):
        st.caption(_held(post))
        _rerun_button(campaign, platform, step, busy)
        return
    if record.error:
        st.error(f"This step failed: {common.plain(record.error)}", icon=":material/error:")
    if record.output is None:
        st.caption("Not made yet.")
    else:
        for field, value in record.output.items():
            label = FIELDS.get(field, field.replace("_", " ").capitalize())
            if isinstance(value, list):
                label += " (one a line)"
            elif not isinstance(value, str):
                label += " (YAML)"
            st.text_area(label, _as_text(value), key=_key(campaign, platform, step, field))
        made = f"run {record.runs} time(s), last {record.ran_at[:19].replace('T', ' ')}" if record.ran_at else ""
        by = f" by {record.trace.label}" if record.trace else ""
        st.caption("; ".join(x for x in [made + by, *record.notes] if x))
    _rerun_button(campaign, platform, step, busy)


def _image_step(campaign: Campaign, folder: Path, platform: str, busy: bool) -> None:
    record, post = campaign.record("image", platform), campaign.posts[platform]
    if post.blocked is not None:
        st.caption(_held(post))
    elif record.error:
        st.error(f"The render failed: {common.plain(record.error)}", icon=":material/error:")
    elif record.output is not None:
        image = record.output
        st.image(str(folder / image["path"]), width=240)
        kind = "offline preview card, not an SDXL render" if image.get("preview") else f"{image['engine']}:{image['model']}"
        st.caption(f"{image['width']}x{image['height']} · seed {image['seed']} · {kind}")
    else:
        st.caption("Not rendered yet.")
    _rerun_button(campaign, platform, "image", busy)


def _held(post: Any) -> str:
    """Why a step of a blocked post shows nothing, and how to go on."""
    blocked = post.blocked
    if blocked.step in ("image", EXPORT):  # the checks before a render and before the package judge the copy and prompt together
        return f"Held back: the {blocked.what} did not pass the brand-safety check. Edit it, then rerun from the image."
    step = TITLES[blocked.step].lower()
    return f"Not made: the post was blocked at the {step} step. Edit its {step}, then rerun from here to have it judged again."


def _rerun_button(campaign: Campaign, platform: str | None, step: str, busy: bool) -> None:
    scope = f"{PLATFORMS[platform].title}'s post" if platform else "every post"
    st.button(
        "Rerun from here", key=_key(campaign, platform, step, "rerun"), icon=":material/replay:", disabled=busy, on_click=_ask,
        args=(campaign.id, step, platform), help=f"Redo this step and the ones after it for {scope}; edits to earlier steps are kept.",
    )  # fmt: skip


def _ask(campaign_id: str, step: str, platform: str | None) -> None:
    """The button's callback: remember the rerun and every text area's value; the page runs it in place."""
    prefix = f"cmp:{campaign_id}:"
    edits = {k: st.session_state[k] for k in st.session_state if isinstance(k, str) and k.startswith(prefix) and not k.endswith(":rerun")}
    st.session_state["campaign_rerun"] = {"id": campaign_id, "step": step, "platform": platform, "edits": edits}


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    import yaml

    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=1000).strip()


def _from_text(text: str, like: Any) -> Any:
    if isinstance(like, str):
        return text.strip()
    if isinstance(like, list):
        return [line.strip() for line in text.splitlines() if line.strip()]
    import yaml

    return yaml.safe_load(text)


def _keep_edits(campaign: Campaign, folder: Path, edits: dict[str, Any], from_step: str, platform: str | None) -> None:
    """Save the edited outputs of the steps before `from_step` (of `platform`'s post, if named) into campaign.json.

    An edit at or before the step where a post was blocked lifts the block: the chain judges the post again.
    """
    import yaml
    from pydantic import ValidationError

    changed = False
    for name in [None, *campaign.posts]:
        if name is not None and platform is not None and name != platform:
            continue
        for step in SHARED if name is None else POST_STEPS:
            if step not in EDITABLE or order(step) >= order(from_step):
                continue
            record = campaign.record(step, name)
            if record.output is None:
                continue
            where = _what(step, name)
            try:
                new = {f: _from_text(edits[k], v) if (k := _key(campaign, name, step, f)) in edits else v for f, v in record.output.items()}
                output = OUTPUTS[step].model_validate(new).model_dump(mode="json")
            except yaml.YAMLError as exc:
                raise CampaignError(f"{where}: the YAML does not read ({exc}); fix it and press Rerun again") from None
            except ValidationError as exc:
                raise CampaignError(f"{where}: {describe(exc)}; fix the edit and press Rerun again") from None
            if output == record.output:
                continue
            record.output, changed = output, True
            record.notes = [*[n for n in record.notes if n != EDITED], EDITED]
            post = campaign.posts.get(name) if name else None
            if post is not None and post.blocked is not None and order(post.blocked.step) <= order(step):
                post.blocked = None
    if changed:
        save(campaign, folder)
