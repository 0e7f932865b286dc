"""The Episodes tab: filter the catalog's episode art, open a piece, regenerate it, download its PNG.

An empty catalog offers to build itself (`run_stage`, as `dataprep.py run` does) on a worker thread,
so the other tabs stay usable while it runs. The art helpers here are shared with the Seasons tab.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import streamlit as st

from imagegen.errors import KeyartError

from . import common

PAGE_SIZE = 12  # four rows of three cards: the first page paints quickly even with SDXL-sized PNGs
STATES = ("done", "prompted", "pending", "failed")
STATE_LABELS = {"done": "done", "prompted": "prompt written, not rendered", "pending": "pending", "failed": "failed"}
PREVIEW_NOTE = (
    "Preview card: an offline placeholder, not an SDXL render. Set KEYART_SDXL_MODEL (see Settings) "
    "and regenerate or rebuild to render it with SDXL."
)
ADOPT_NOTE = (
    "Use in catalog replaces this entry's image (the gallery, exports and contact sheets use it). "
    "A later build or `dataprep.py run` restores the catalog-seed image; this file stays as an alternative."
)


# -- the catalog's rows -----------------------------------------------------------------------------


def catalog_rows(store) -> list[dict[str, Any]]:
    from ..workflows.export import catalog_rows as rows

    return rows(store)


def entry_of(row: dict[str, Any]) -> tuple[str, int, int, str]:
    from ..store import SEASON_ART

    return (row["show"], row["season"], row["episode"] if row["episode"] is not None else SEASON_ART, row["style"])


def row_id(row: dict[str, Any]) -> str:
    """A widget-safe name of an entry: gullhaven-s01-e02-anime."""
    show, season, episode, style = entry_of(row)
    return re.sub(r"[^a-z0-9-]+", "-", f"{show.lower()}-s{season:02d}-e{episode:02d}-{style}")


def image_file(row: dict[str, Any]) -> Path | None:
    path = Path(row["image"]) if row.get("image") else None
    return path if path is not None and path.is_file() else None


def is_preview(row_or_lineage: dict[str, Any]) -> bool:
    return row_or_lineage.get("engine") == "preview" or bool(row_or_lineage.get("preview"))


def summaries() -> dict[tuple[str, int, int], str]:
    """(show, season, episode) -> summary from the session's catalog file; season summaries under episode 0."""
    from ..store import SEASON_ART

    try:
        catalog = common.current_catalog()
    except KeyartError:
        return {}  # the Settings tab says what is wrong with the file; the art is still worth showing
    found = {(e.show, e.season, e.episode): e.summary for e in catalog.episodes}
    found |= {(catalog.show, s.season, SEASON_ART): s.summary for s in catalog.seasons}
    return found


# -- building the catalog on a worker thread --------------------------------------------------------


class BuildJob:
    """One catalog build (`run_stage`) on a worker thread; it is the run's Progress, read by the page."""

    def __init__(self, store, items: list, model: Any, slot: Any, settings: Any, *, what: str):
        self.id = secrets.token_hex(4)
        self.store, self.items, self.model, self.slot, self.settings = store, items, model, slot, settings
        self.what = what  # "Season 1, 2 styles": shown while it runs
        self.totals: dict[str, int] = {}
        self.counts: dict[str, Counter] = {}
        self.current: dict[str, str] = {}
        self.failures: list[str] = []
        self.report: Any = None
        self.error: BaseException | None = None
        self.started, self.finished = time.time(), None
        self.stopping = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"keyart-build-{self.id}", daemon=True)

    # The Progress protocol (assistant.workflows.stages), called from the run's threads.
    def stage(self, name: str, total: int) -> None:
        with self._lock:
            self.totals[name] = total
            self.counts.setdefault(name, Counter())

    def step(self, name: str, outcome: str, label: str, detail: str = "") -> None:
        with self._lock:
            self.counts.setdefault(name, Counter())[outcome] += 1
            self.current[name] = f"{label} {outcome}"
            if outcome == "failed":
                self.failures.append(f"{name} {label}: {detail}")

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "totals": dict(self.totals),
                "counts": {name: dict(c) for name, c in self.counts.items()},
                "current": dict(self.current),
                "failures": list(self.failures),
            }

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> BuildJob:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        """Ctrl-C for this build: KeyboardInterrupt in its thread, which `run_stage` handles as the
        CLI's Ctrl-C (the item in flight is dropped, what is finished is kept, a rerun resumes)."""
        import ctypes

        if self.running and self._thread.ident is not None:
            self.stopping = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread.ident), ctypes.py_object(KeyboardInterrupt))

    @property
    def stopped(self) -> bool:
        return isinstance(self.error, KeyboardInterrupt) or bool(self.report is not None and self.report.interrupted)

    def _run(self) -> None:
        from ..workflows.stages import run_stage

        try:
            with self.store.lock():  # a dataprep run on the same home is told, not interleaved
                self.report = run_stage(self.items, self.store, self.model, self.slot, self.settings, progress=self)
        except BaseException as exc:  # noqa: BLE001  (handed to the page, which shows it: there is no caller to raise to)
            self.error = exc
        finally:
            self.finished = time.time()
            self.store.close()  # this thread's connection


@st.cache_resource(show_spinner=False)
def _builds() -> tuple[dict[str, BuildJob], threading.Lock]:
    """Every session's builds by home: one build per home at a time, visible to all who look at it."""
    return {}, threading.Lock()


def _home_key(home: str | Path) -> str:
    return str(Path(home).expanduser().resolve())


def build_job(home: str | Path) -> BuildJob | None:
    """The latest build of `home` (running or finished), if this process started one."""
    return _builds()[0].get(_home_key(home))


def start_build(selection: Any, *, what: str) -> BuildJob:
    """Start building `selection` of the session's catalog with the session's model, engine and quality."""
    from ..models import is_offline
    from ..workflows.plan import RenderSettings, plan_prompts

    # 1. Everything that can fail with a message, before any thread starts.
    s = common.settings()
    catalog, store = common.current_catalog(), common.current_store()
    model = common.language_model(s["llm"])
    slot = common.engine_slot(s["engine"])
    items = plan_prompts(catalog, model, selection)
    if not is_offline(model):
        from ..llm_cache import StoreCache, attach

        model = attach(model, StoreCache(store))  # replies cached in the catalog, as dataprep does
    # 2. One build per home: a second click (or a second session) watches the running one.
    jobs, lock = _builds()
    with lock:
        running = jobs.get(_home_key(store.home))
        if running is not None and running.running:
            return running
        job = BuildJob(store, items, model, slot, RenderSettings(quality=s["quality"]), what=what)
        jobs[_home_key(store.home)] = job
        return job.start()


def _progress_text(name: str, counts: dict[str, int], total: int, current: str) -> str:
    done = sum(counts.values())
    noun = "prompts" if name == "prompts" else "images"
    parts = [f"{counts.get('done', 0)} new"] + [f"{counts[k]} {k}" for k in ("skipped", "failed") if counts.get(k)]
    return f"{noun.capitalize()}: {done} of {total} ({', '.join(parts)})" + (f" · {current}" if current and done < total else "")


def draw_build(job: BuildJob) -> None:
    """The build's state: a progress bar per stage inside a status box; its outcome when finished."""
    snap = job.snapshot()
    images = snap["totals"].get("render", 0)
    if job.running:
        verb = "Stopping after the item in flight" if job.stopping else "Building the catalog"
        label, state = f"{verb} ({job.what}): {sum(snap['counts'].get('render', {}).values())} of {images} images", "running"
    elif job.stopped:
        done = sum(snap["counts"].get("render", {}).values())
        label, state = f"Build stopped after {done} of {images} images; what is finished is kept, and building again resumes", "complete"
    elif job.error is not None:
        label, state = "The build failed", "error"
    else:
        report = job.report
        label = (
            f"Catalog built ({job.what}): {report.images.done} images rendered"
            + (f", {report.images.skipped} already there" if report.images.skipped else "")
            + (f", {report.failed} failed" if report.failed else "")
            + f" in {job.finished - job.started:.1f} s"
        )
        state = "error" if report.failed else "complete"
    with st.status(label, state=state, expanded=job.running or state == "error"):
        for name in ("prompts", "render"):
            if name in snap["totals"]:
                total = snap["totals"][name]
                counts = snap["counts"].get(name, {})
                st.progress(min(1.0, sum(counts.values()) / total) if total else 1.0, text=_progress_text(name, counts, total, snap["current"].get(name, "")))
        for failure in snap["failures"][:10]:
            st.caption(f":red[failed] {common.plain(failure)}")
        if len(snap["failures"]) > 10:
            st.caption(f"... and {len(snap['failures']) - 10} more; `python dataprep.py status` lists them all")
        if isinstance(job.error, KeyartError):
            common.show_error(job.error)
        elif job.error is not None and not job.stopped:
            st.exception(job.error)


@st.fragment(run_every=1.0)
def _watch_build(home: str) -> None:
    """Redrawn every second while the build runs; the whole page reruns once it is done."""
    job = build_job(home)
    if job is None:
        return
    with st.container(horizontal=True, vertical_alignment="top"):
        draw_build(job)
        if job.running and not job.stopping and st.button("Stop", key=f"stop-build-{job.id}", icon=":material/stop:", help="Keeps what is finished; building again resumes"):
            job.stop()  # the fragment's next tick shows it stopping, then stopped
    if not job.running:
        st.rerun()


def build_status(home: str) -> BuildJob | None:
    """The running build's live progress, or the last build's outcome until this session dismisses it."""
    job = build_job(home)
    if job is None:
        return None
    if job.running:
        _watch_build(home)
    elif job.id not in st.session_state.setdefault("dismissed_builds", set()):
        with st.container(horizontal=True, vertical_alignment="top"):
            draw_build(job)
            if st.button("Dismiss", key=f"dismiss-build-{job.id}", icon=":material/close:"):
                st.session_state["dismissed_builds"].add(job.id)
                st.rerun()
    return job


def build_form(*, primary: bool) -> None:
    """What to build (seasons, styles), what it takes, and the button that starts it."""
    from imagegen.engines import choose
    from imagegen.presets import describe_quality
    from imagegen.styles import names

    from ..workflows.plan import Selection, plan_prompts

    s = common.settings()
    try:
        catalog = common.current_catalog()
    except KeyartError as exc:
        common.show_error(exc)
        st.caption("Fix the catalog file in Settings (or clear it to use the sample show).")
        return
    seasons = catalog.season_numbers()
    left, right = st.columns([1, 2])
    season = left.selectbox("Seasons", ["all", *seasons], format_func=lambda n: "All seasons" if n == "all" else f"Season {n}", key="ep-build-season")
    styles = right.multiselect("Styles", names(), default=names(), key="ep-build-styles")
    selection = Selection(season=None if season == "all" else season, styles=tuple(styles) or None)
    items = plan_prompts(catalog, None, selection) if styles else []
    images = sum(len(i.styles) for i in items)
    try:
        engine = choose(s["engine"])
    except KeyartError as exc:
        common.show_error(exc)
        return
    st.markdown(
        f"**{catalog.show}**: {len(items)} prompt sets ({sum(i.kind == 'episode' for i in items)} episodes by meta-prompting, "
        f"{sum(i.kind == 'season' for i in items)} seasons by self-ask), **{images} images**. "
        f"Language model **{s['llm']}**, engine **{engine.name}**, quality **{s['quality']}** ({describe_quality(s['quality'])}); "
        "change them in Settings."
    )
    if engine.name == "preview":
        st.caption(f":orange[:material/info:] {engine.reason[:1].upper()}{engine.reason[1:]}.")
    job = build_job(s["home"])
    busy = job is not None and job.running
    what = ("all seasons" if season == "all" else f"season {season}") + f", {len(styles)} style{'s' * (len(styles) != 1)}"
    if st.button("Build the catalog", type="primary" if primary else "secondary", icon=":material/auto_awesome:", disabled=busy or not styles, key="ep-build"):
        try:
            start_build(selection, what=what)
        except KeyartError as exc:
            common.show_error(exc)
            return
        st.rerun()  # the page now shows the build's progress at the top
    flags = [f"--season {season}"] if season != "all" else []
    flags += [f"--styles {','.join(styles)}"] if styles and set(styles) != set(names()) else []
    flags += [f"--llm {s['llm']}", f"--engine {s['engine']}", f"--quality {s['quality']}"]
    st.caption(f"From the shell: `KEYART_HOME={s['home']} python dataprep.py run {' '.join(flags)}`. Only what is missing or changed is made; a stopped build resumes.")


def empty_state(home: str) -> None:
    st.subheader("Build your first catalog")
    st.markdown(
        f"The catalog in `{home}` is empty. keyart reads the show's episode and season summaries, "
        "has a language model write an SDXL prompt for every episode and season in each style, "
        "and renders them. Each PNG keeps its prompt, seed and the model's trace, so any image can be reproduced."
    )
    with st.container(border=True):
        build_form(primary=True)


# -- regenerating a piece of art --------------------------------------------------------------------


def regenerate(store, slot, row: dict[str, Any], *, prompt: str, negative_prompt: str, seed: int, quality: str, progress=None) -> Path:
    """Render an entry again with `seed` (-1: a new random one) and perhaps an edited prompt.

    The PNG is written beside the catalog's images, under its own key, with the lineage saying
    what it was regenerated from. The catalog keeps its image: this is an alternative until `adopt`.
    """
    from imagegen.metadata import write_png
    from imagegen.request import MAX_SEED

    from ..store import IMAGES
    from ..workflows.plan import RenderSettings, image_key, image_path

    # 1. A concrete seed before the key: the key names the file, so two random renders never collide.
    seed = secrets.randbelow(MAX_SEED + 1) if seed < 0 else seed
    request = RenderSettings(quality=quality).request(row["kind"], prompt=prompt, negative_prompt=negative_prompt, style=row["style"], seed=seed)
    key = image_key(request, slot.identity(request.refiner))
    # 2. The lineage the catalog writes, plus where this render came from.
    result = store.prompt(row["prompt_key"]) if row.get("prompt_key") else None
    trace = (result or {}).get("trace", {})
    lineage = {
        "show": row["show"],
        "season": row["season"],
        "episode": row["episode"],
        "title": row["title"],
        "kind": row["kind"],
        "style": row["style"],
        "technique": trace.get("technique"),
        "llm": trace.get("model"),
        "fallback": trace.get("fallback"),
        "trace": trace,
        "prompt_key": row.get("prompt_key"),
        "image_key": key,
        "regenerated": {"from_image": row.get("image_key"), "from_seed": row.get("seed"), "edited_prompt": (prompt, negative_prompt) != (row.get("prompt"), row.get("negative_prompt")), "by": "dashboard"},
    }
    # 3. Render, and write the PNG atomically next to the catalog's.
    [image] = slot.get().render(request, lineage=lineage, progress=progress)
    return write_png(image, store.home / IMAGES / image_path(*entry_of(row), key))


def adopt(store, row: dict[str, Any], path: Path) -> None:
    """Make the PNG at `path` (keyart-rendered, with its lineage) the entry's image in the catalog."""
    from imagegen.metadata import read_png

    from ..errors import CatalogError

    meta = read_png(path).lineage or {}
    key = (meta.get("lineage") or {}).get("image_key")
    if not key or "request" not in meta:
        raise CatalogError(f"{path} carries no keyart lineage with an image key; only images keyart rendered can join the catalog")
    prompt_key = row.get("prompt_key") or meta["lineage"].get("prompt_key")
    # seconds=0: the render was timed when it ran, not recorded in the PNG; nothing is rendered now.
    store.save_image(key, entry=entry_of(row), prompt_key=prompt_key, path=Path(path), seed=meta["seed"], engine=meta["engine"], model=meta["model"], request=meta["request"], seconds=0.0)


def alternatives(store, row: dict[str, Any]) -> list[Path]:
    """Other renders of the entry beside its image (regenerated, or earlier catalog versions), newest first."""
    from ..store import IMAGES
    from ..workflows.plan import image_path

    sample = Path(image_path(*entry_of(row), "0" * 12))
    folder = store.home / IMAGES / sample.parent
    pattern = re.compile(re.escape(sample.name[: -len("000000000000.png")]) + r"[0-9a-f]{12}\.png")
    current = image_file(row)
    found = [p for p in folder.glob("*.png") if pattern.fullmatch(p.name) and p != current] if folder.is_dir() else []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def rendered_request(store, row: dict[str, Any]) -> dict[str, Any]:
    """The request the entry's image was rendered from ({} when it has none)."""
    image = store.image(row["image_key"]) if row.get("image_key") else None
    return json.loads(image["request"]) if image else {}


def _lineage(path: Path) -> dict[str, Any]:
    from imagegen.metadata import read_png

    try:
        return read_png(path).lineage or {}
    except KeyartError:
        return {}


def download(path: Path, *, key: str, label: str = "Download PNG") -> None:
    st.download_button(
        label, path.read_bytes(), file_name=path.name, mime="image/png", key=key, icon=":material/download:", on_click="ignore",
        help="The PNG as rendered: its A1111 parameters and keyart lineage travel inside it",
    )


def _adopt_button(store, row: dict[str, Any], path: Path, *, key: str) -> None:
    if st.button("Use in catalog", key=key, icon=":material/check:", help=ADOPT_NOTE):
        try:
            adopt(store, row, path)
        except KeyartError as exc:
            common.show_error(exc)
            return
        st.toast(f"{label_of(row)} now uses {path.name}", icon=":material/check:")
        st.rerun()  # the whole page: the gallery's card changes too


def label_of(row: dict[str, Any]) -> str:
    where = f"S{row['season']:02d}" + (f"E{row['episode']:02d}" if row["episode"] is not None else " season")
    return f"{where} {row['style']}"


@st.fragment
def regenerate_panel(row: dict[str, Any], prefix: str) -> None:
    """Render the entry again (new seed, edited prompt), see the result, keep it or not; older renders below.

    A fragment: rendering and choosing rerun this panel only, never the other tabs.
    """
    from imagegen.request import MAX_SEED

    store, s = common.current_store(), common.settings()
    if not row.get("prompt"):
        st.info("This entry has no prompt yet; build the catalog first.")
        return
    job = build_job(s["home"])
    busy = job is not None and job.running
    rid = row_id(row)
    used = rendered_request(store, row)  # start from what the image used: an adopted edit stays edited
    with st.form(key=f"{prefix}-regen-{rid}", border=False):
        prompt = st.text_area("Prompt", value=used.get("prompt", row["prompt"]), height=110, key=f"{prefix}-prompt-{rid}")
        negative = st.text_area("Negative prompt", value=used.get("negative_prompt", row["negative_prompt"] or ""), height=68, key=f"{prefix}-negative-{rid}")
        seed = st.number_input("Seed", min_value=-1, max_value=MAX_SEED, value=-1, step=1, key=f"{prefix}-seed-{rid}", help="-1: a new random seed (recorded in the PNG)")
        clicked = st.form_submit_button("Regenerate", type="primary", icon=":material/refresh:", disabled=busy)
    if busy:
        st.caption("A build of this catalog is running; regenerate when it is done.")
    last_key = f"{prefix}-last-{rid}"
    if clicked:
        bar = st.progress(0.0, text="Rendering...")
        try:
            slot = common.engine_slot(s["engine"])
            with st.spinner(f"Rendering with the {slot.name} engine..."):
                path = regenerate(
                    store, slot, row, prompt=prompt, negative_prompt=negative, seed=int(seed), quality=s["quality"],
                    progress=lambda done, total: bar.progress(done / total, text=f"Step {done} of {total}"),
                )
        except KeyartError as exc:
            bar.empty()
            common.show_error(exc)
            return
        bar.empty()
        st.session_state[last_key] = str(path)
    last = Path(st.session_state[last_key]) if st.session_state.get(last_key) else None
    if last is not None and last.is_file() and last != image_file(row):
        meta = _lineage(last)
        st.markdown(f"**New render** · seed {meta.get('seed', '?')}" + (" · edited prompt" if meta.get("lineage", {}).get("regenerated", {}).get("edited_prompt") else ""))
        st.image(str(last), width="stretch")
        if is_preview(meta):
            st.caption(f":orange[{PREVIEW_NOTE}]")
        with st.container(horizontal=True):
            _adopt_button(store, row, last, key=f"{prefix}-adopt-new-{rid}")
            download(last, key=f"{prefix}-dl-new-{rid}")
        st.caption(ADOPT_NOTE)
    others = [p for p in alternatives(store, row) if p != last]
    if others:
        st.markdown(f"**Other renders** ({len(others)})")
        grid = st.grid(3, min_column_width=140)
        for i, path in enumerate(others[:6]):
            meta = _lineage(path)
            with grid.container(border=True):
                st.image(str(path), width="stretch")
                note = "regenerated" if meta.get("lineage", {}).get("regenerated") else "earlier catalog render"
                st.caption(f"seed {meta.get('seed', '?')} · {note}" + (" · preview" if is_preview(meta) else ""))
                _adopt_button(store, row, path, key=f"{prefix}-adopt-{i}-{rid}")
        if len(others) > 6:
            st.caption(f"... and {len(others) - 6} more in {others[0].parent}")


# -- one piece of art in detail ---------------------------------------------------------------------


def badges(row: dict[str, Any], *, compact: bool = False) -> None:
    """The style, and whether the art is a preview card, a render, or not made yet."""
    with st.container(horizontal=True, gap="xxsmall" if compact else "xsmall"):
        st.badge(row["style"], color="blue")
        if row["state"] != "done":
            st.badge(row["state"] if compact else STATE_LABELS[row["state"]], color="red" if row["state"] == "failed" else "gray")
        elif is_preview(row):
            st.badge("preview" if compact else "preview card", color="orange", help=PREVIEW_NOTE)
        else:
            st.badge(row["engine"] or "rendered", color="green")


def trace_view(row: dict[str, Any], result: dict[str, Any] | None) -> None:
    """Who wrote the prompt, how, and what went back and forth."""
    if not result:
        st.info("No prompts written yet.")
        return
    trace = result.get("trace", {})
    who = trace.get("model", "?") + (" (fell back to offline)" if trace.get("fallback") else "")
    st.markdown(f"Written by **{who}** by **{trace.get('technique', '?')}**.")
    if trace.get("fallback"):
        st.warning(f"The model's reply stayed unusable, so the offline rules wrote these prompts: {trace['fallback']}")
    for name in ("retries", "warnings"):
        for item in trace.get(name) or []:
            st.caption(f"{name[:-1]}: {item}")
    if trace.get("repairs"):
        st.caption(f"{trace['repairs']} repair round(s): the model was shown its parse error and asked again")
    if result.get("brief"):
        st.markdown("**Scene brief**")
        st.json(result["brief"], expanded=False)
    if trace.get("messages"):
        st.markdown(f"**Messages** ({len(trace['messages'])} request(s))")
        st.json(trace["messages"], expanded=False)
        st.markdown("**Replies**")
        for reply in trace.get("replies") or []:
            st.code(reply, language=None, wrap_lines=True)
    elif trace.get("model") == "offline":
        st.caption("The offline rules read the summary directly: there is no model conversation to show.")


def parameters_view(row: dict[str, Any], path: Path | None, request: dict[str, Any]) -> None:
    if not request:
        st.info("Not rendered yet.")
        return
    lines = [
        ("Seed", row["seed"]),
        ("Size", f"{request.get('width')} × {request.get('height')}"),
        ("Steps", request.get("num_inference_steps")),
        ("Sampler", f"{request.get('sampler')} {request.get('schedule_type') or ''}".strip()),
        ("CFG scale", request.get("guidance_scale")),
        ("Engine", f"{row['engine']} ({row['model']})" + (" · offline preview card" if is_preview(row) else "")),
        ("Language model", row["llm"]),
        ("Technique", row["technique"]),
    ]
    st.markdown("\n".join(["| | |", "|---|---|", *[f"| {k} | {common.plain(str(v))} |" for k, v in lines]]))
    if path is not None:
        from imagegen.metadata import read_png

        try:
            infotext = read_png(path).infotext
        except KeyartError as exc:
            common.show_error(exc)
            return
        if infotext:
            st.markdown("**A1111 parameters** (as stored in the PNG; paste into A1111's PNG Info)")
            st.code(infotext, language=None, wrap_lines=True)


def detail(row: dict[str, Any], summary: str, prefix: str = "ep") -> None:
    """One entry: the art, its story, prompt, parameters and trace; regenerate and download."""
    store = common.current_store()
    title = f"S{row['season']:02d}E{row['episode']:02d}" if row["episode"] is not None else f"Season {row['season']}"
    st.subheader(f"{title} · {common.plain(row['title'])}" if row["title"] else title)
    badges(row)
    path = image_file(row)
    if path is not None:
        st.image(str(path), width="stretch")
        if is_preview(row):
            st.caption(f":orange[{PREVIEW_NOTE}]")
        download(path, key=f"{prefix}-dl-{row_id(row)}")
    elif row["state"] == "failed":
        st.error(f"Failed at {row['failed_at']}: {common.plain(row['error'] or '')}", icon=":material/error:")
    else:
        st.info(f"No image yet ({STATE_LABELS[row['state']]}).")
    request = rendered_request(store, row)
    result = store.prompt(row["prompt_key"]) if row.get("prompt_key") else None
    story, prompt_tab, params, trace, again = st.tabs(["Story", "Prompt", "Parameters", "Trace", "Regenerate"])
    with story:
        st.markdown(common.plain(summary) if summary else "_The catalog file has no summary for this one._")
    with prompt_tab:
        edited = request.get("prompt", row["prompt"]) != row["prompt"] or request.get("negative_prompt", row["negative_prompt"]) != row["negative_prompt"]
        st.markdown("**Prompt**" + (" (edited in the dashboard)" if edited else ""))
        st.code(request.get("prompt", row["prompt"]) or "(none yet)", language=None, wrap_lines=True)
        st.markdown("**Negative prompt**")
        st.code(request.get("negative_prompt", row["negative_prompt"]) or "(none)", language=None, wrap_lines=True)
        if edited:
            st.markdown("**The language model's prompt and negative**")
            st.code(f"{row['prompt']}\n\nNegative: {row['negative_prompt'] or '(none)'}", language=None, wrap_lines=True)
        st.caption(f"Style **{row['style']}** wraps this prompt with its own template and negative at render time.")
    with params:
        parameters_view(row, path, request)
    with trace:
        trace_view(row, result)
    with again:
        regenerate_panel(row, prefix)


# -- the tab ----------------------------------------------------------------------------------------


def _matches(row: dict[str, Any], words: list[str], summary: str) -> bool:
    text = " ".join(str(row.get(k) or "") for k in ("title", "prompt", "style")) + " " + summary
    return all(w in text.lower() for w in words)


def _pick(name: str) -> None:
    st.session_state["ep-pick"] = name


def _card(row: dict[str, Any], picked: bool) -> None:
    with st.container(border=True):
        path = image_file(row)
        if path is not None:
            st.image(str(path), width="stretch")
        else:
            st.markdown(f"`{STATE_LABELS[row['state']]}`" + (f"  \n{common.plain(row['error'])}" if row["error"] else ""))
        # The title opens the piece in the detail panel beside the gallery.
        st.button(
            f"**S{row['season']:02d}E{row['episode']:02d}** · {common.plain(row['title'])}", key=f"ep-open-{row_id(row)}", on_click=_pick, args=(row_id(row),),
            type="tertiary", icon=":material/visibility:" if picked else None, help="Open it beside the gallery",
        )
        badges(row, compact=True)


def render() -> None:
    try:
        store = common.current_store()
        rows = catalog_rows(store)
    except KeyartError as exc:
        common.show_error(exc)
        return
    home = str(store.home)
    job = build_status(home)
    if not rows or (job is not None and job.running and not any(r["state"] == "done" for r in rows)):
        if job is None or not job.running:
            empty_state(home)
        else:
            st.caption("The gallery opens when the build is done. The other tabs stay usable meanwhile.")
        return
    episodes = [r for r in rows if r["kind"] == "episode"]
    if not episodes:
        st.info("The catalog holds no episode art yet; build it below.")
    texts = summaries()
    # 1. Filters: season, style, status and words in the title, summary or prompt.
    seasons = sorted({r["season"] for r in episodes})
    styles = list(dict.fromkeys(r["style"] for r in sorted(episodes, key=lambda r: r["style"])))
    c1, c2, c3, c4 = st.columns([1, 2, 2, 3])
    season = c1.selectbox("Season", ["all", *seasons], format_func=lambda n: "All seasons" if n == "all" else f"Season {n}", key="ep-season")
    chosen_styles = c2.multiselect("Style", styles, placeholder="All styles", key="ep-styles")
    chosen_states = c3.multiselect("Status", STATES, format_func=STATE_LABELS.get, placeholder="Any status", key="ep-states")
    words = c4.text_input("Search", placeholder="Title, summary or prompt words", key="ep-text", icon=":material/search:").lower().split()
    shown = [
        r
        for r in episodes
        if (season == "all" or r["season"] == season)
        and (not chosen_styles or r["style"] in chosen_styles)
        and (not chosen_states or r["state"] in chosen_states)
        and _matches(r, words, texts.get(entry_of(r)[:3], ""))
    ]
    # 2. The gallery (left) and the open piece (right).
    gallery, side = st.columns([3, 2], gap="large")
    with gallery:
        counts = Counter(r["state"] for r in shown)
        st.caption(f"{len(shown)} of {len(episodes)} pieces · " + ", ".join(f"{counts[s]} {STATE_LABELS[s]}" for s in STATES if counts[s]))
        if not shown:
            st.info("Nothing matches these filters.")
        pages = max(1, -(-len(shown) // PAGE_SIZE))
        page = 1
        if pages > 1:
            signature = re.sub(r"\W+", "-", f"{season}-{chosen_styles}-{chosen_states}-{words}")
            page = st.pagination(pages, key=f"ep-page-{signature}")  # new filters start on page 1
        picked = st.session_state.get("ep-pick")
        if picked not in {row_id(r) for r in shown} and shown:
            picked = row_id(shown[0])
        grid = st.grid(3, min_column_width=220)
        with grid:
            for row in shown[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
                _card(row, row_id(row) == picked)
    with side:
        current = next((r for r in shown if row_id(r) == picked), None)
        if current is not None:
            detail(current, texts.get(entry_of(current)[:3], ""))
    with st.expander("Build, update or extend the catalog", icon=":material/construction:"):
        build_form(primary=False)
