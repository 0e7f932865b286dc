"""Building the catalog from the dashboard: `run_stage` (as `dataprep.py run` does) on a worker thread,
so the other tabs stay usable while it runs; its live progress, its Stop button and its outcome.

One build per home at a time, shared by every session that looks at that home.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import streamlit as st

from imagegen.errors import KeyartError

from . import common


class BuildJob:
    """One catalog build (`Build.run`) on a worker thread; it is the run's Progress, read by the page."""

    def __init__(self, build: Any, *, what: str):
        self.id = secrets.token_hex(4)
        self.build = build
        self.what = what  # "Season 1, 2 styles": shown while it runs
        self.totals: dict[str, int] = {}
        self.counts: dict[str, Counter] = {}
        self.current: dict[str, str] = {}
        self.failures: list[str] = []
        self.report: Any = None
        self.error: BaseException | None = None
        self.started, self.finished = time.time(), None
        self._stop = threading.Event()  # set by `stop()`; the build ends after the item in hand
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
        """Ctrl-C for this build: `run_stage` ends after the item in hand; what is finished is kept and a rerun resumes."""
        if self.running:
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def stopped(self) -> bool:
        return bool(self.report is not None and self.report.interrupted)

    def _run(self) -> None:
        try:
            self.report = self.build.run(progress=self, stop=self._stop)
        except BaseException as exc:  # noqa: BLE001  (handed to the page, which shows it: there is no caller to raise to)
            self.error = exc
        finally:
            self.finished = time.time()
            self.build.store.close()  # this thread's connection


@st.cache_resource(show_spinner=False)
def _builds() -> tuple[dict[str, BuildJob], threading.Lock]:
    """Every session's builds by home: one build per home at a time, visible to all who look at it."""
    return {}, threading.Lock()


def _home_key(home: str | Path) -> str:
    return str(Path(home).expanduser().resolve())


def build_job(home: str | Path) -> BuildJob | None:
    """The latest build of `home` (running or finished), if this process started one."""
    return _builds()[0].get(_home_key(home))


def plan_build(selection: Any, *, quality: str | None = None):
    """The session's build of `selection` (its catalog, model, engine and quality), planned, not started."""
    from ..workflows.build import prepare_build
    from ..workflows.plan import RenderSettings

    s = common.settings()
    return prepare_build(
        common.current_catalog(), common.current_store(), selection=selection, model=common.language_model(s["llm"]),
        service=common.current_service(), settings=RenderSettings(quality=quality or s["quality"]),
    )  # fmt: skip


def start_build(build: Any, *, what: str) -> BuildJob:
    """Start `build` (from plan_build) on a worker thread, unless one already runs on its home."""
    jobs, lock = _builds()
    with lock:
        running = jobs.get(_home_key(build.store.home))
        if running is not None and running.running:
            return running  # a second click (or a second session) watches the running one
        job = BuildJob(build, what=what)
        jobs[_home_key(build.store.home)] = job
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
    from ..workflows.service import choose
    from imagegen.styles import names

    from ..workflows.plan import Selection, describe_build_quality, plan_prompts

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
        engine = choose(s["engine"], settings=common.configured().image)
    except KeyartError as exc:
        common.show_error(exc)
        return
    st.markdown(
        f"**{catalog.show}**: {len(items)} prompt sets ({sum(i.kind == 'episode' for i in items)} episodes by meta-prompting, "
        f"{sum(i.kind == 'season' for i in items)} seasons by self-ask), **{images} images**. "
        f"Language model **{s['llm']}**, engine **{engine.name}**, quality **{s['quality']}** ({describe_build_quality(s['quality'])}); "
        "change them in Settings."
    )
    if engine.name == "preview":
        st.caption(f":orange[:material/info:] {engine.reason[:1].upper()}{engine.reason[1:]}.")
    job = build_job(s["home"])
    busy = job is not None and job.running
    what = ("all seasons" if season == "all" else f"season {season}") + f", {len(styles)} style{'s' * (len(styles) != 1)}"
    if st.button("Build the catalog", type="primary" if primary else "secondary", icon=":material/auto_awesome:", disabled=busy or not styles, key="ep-build"):
        try:
            build = plan_build(selection)
            redo = build.redo_message()
        except KeyartError as exc:
            common.show_error(exc)
            return
        if redo is None:
            start_build(build, what=what)
            st.rerun()  # the page now shows the build's progress at the top
        st.session_state["build:confirm"] = {"redo": redo, "what": what, "season": season, "styles": styles}
    confirm = st.session_state.get("build:confirm")
    if confirm is not None and not busy:
        _confirm_redo(confirm, selection)
    flags = [f"--season {season}"] if season != "all" else []
    flags += [f"--styles {','.join(styles)}"] if styles and set(styles) != set(names()) else []
    flags += [f"--llm {s['llm']}", f"--engine {s['engine']}", f"--quality {s['quality']}"]
    st.caption(f"From the shell: `KEYART_HOME={s['home']} python dataprep.py run {' '.join(flags)}`. Only what is missing or changed is made; a stopped build resumes.")


def _confirm_redo(confirm: dict[str, Any], selection: Any) -> None:
    """Replacing existing art is asked for, never done quietly: redo it, or keep it and make only what is missing."""
    st.warning(f"{confirm['redo'][:1].upper()}{confirm['redo'][1:]}. Redo them?", icon=":material/warning:")
    redo, keep, never = st.columns(3)
    choice = None
    if redo.button("Redo them", type="primary", key="build-redo", icon=":material/refresh:"):
        choice = None, "redo"
    if keep.button("Keep the catalog's art", key="build-keep", icon=":material/lock:", help="Builds only what is missing or changed, with the art's own settings"):
        choice = "catalog", "keep"
    if never.button("Cancel", key="build-cancel"):
        st.session_state.pop("build:confirm", None)
        st.rerun()
    if choice is not None:
        st.session_state.pop("build:confirm", None)
        try:
            start_build(plan_build(selection, quality=choice[0]), what=confirm["what"])
        except KeyartError as exc:
            common.show_error(exc)
            return
        st.rerun()


def empty_state(home: str) -> None:
    st.subheader("Build your first catalog")
    st.markdown(
        f"The catalog in `{home}` is empty. keyart reads the show's episode and season summaries, "
        "has a language model write an SDXL prompt for every episode and season in each style, "
        "and renders them. Each PNG keeps its prompt, seed and the model's trace, so any image can be reproduced."
    )
    with st.container(border=True):
        build_form(primary=True)
