"""Waiting for queued renders in the dashboard: the user's place in the shared render queue, then a
progress bar with the step count, a Cancel button, and the jobs cancelled if the script run stops.

    result = jobs.run(service, "Rendering", partial(studio.render, service, home, request), key="studio_cancel")

`work` is a workflow call that takes the keywords `owner`, `progress`, `stop` and `on_job` (every
Studio action does). It runs in a helper thread while this script run polls the jobs it queued and
redraws one placeholder. Streamlit stops a script run at its next `st` call when the page reruns
(the Cancel button, or any control changed meanwhile): `run` then cancels the jobs, and `notice`
says so in the next run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from imagegen import KeyartError

from . import common

log = logging.getLogger(__name__)

T = TypeVar("T")
POLL_S = 0.2  # how often the placeholder is redrawn: each redraw is also where Streamlit can stop the run
NOTE = "jobs:stopped:"  # session_state key prefix: why the last run's work stopped, said once


def run(service, label: str, work: Callable[..., T], *, key: str) -> T:
    """Run `work(owner=, progress=, stop=, on_job=)` and show its jobs until it returns; its result,
    or its own error (a KeyartError for the caller to show).

    `label` says what is being made ("Rendering", "Hunting 9 seeds"); `key` names the Cancel button
    (one per place the page calls `run`) and the note `notice(key)` shows after a stop.
    """
    owner = common.owner()
    queued: list[Any] = []  # the Jobs `work` submitted, in order (appended from its thread)
    steps = [0, 0]  # (done, total) across them, as `work` reports it (from the queue's worker thread)
    stop, finished = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        steps[:] = [done, total]

    def body() -> None:
        try:
            outcome["value"] = work(owner=owner, progress=progress, stop=stop, on_job=queued.append)
        except BaseException as exc:  # handed to the script thread below, which raises it as it is
            outcome["error"] = exc
        finally:
            finished.set()

    # 1. The placeholders; the work starts in its own thread, so this one can redraw them.
    status, cancel = st.empty(), st.empty()
    # The Cancel button has no handler of its own: its click reruns the script, which stops this run
    # at its next st call inside the loop below, and the `finally` there cancels the jobs.
    cancel.button("Cancel", key=key, icon=":material/cancel:", help="Stop this render; images already saved are kept")
    threading.Thread(target=body, name=f"keyart-ui-{key}", daemon=True).start()
    # 2. Redraw the queue position or the steps until the work is done.
    try:
        while True:
            value, text = describe(label, list(queued), tuple(steps))
            status.progress(value, text=text)
            if finished.wait(POLL_S):
                break
    finally:
        if not finished.is_set():  # the run was stopped (a rerun, a closed tab): nobody waits for these jobs now
            stop.set()
            _cancel(service, queued, owner)
            st.session_state[NOTE + key] = f"{label} stopped before it finished: the page reran (Cancel, or a control changed meanwhile)."
    # 3. Clear the placeholders; hand back the result or raise the work's error.
    status.empty()
    cancel.empty()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def notice(key: str) -> None:
    """Say once that the last run's work under `key` was stopped (and its jobs cancelled)."""
    note = st.session_state.pop(NOTE + key, None)
    if note:
        st.info(note, icon=":material/cancel:")


def describe(label: str, jobs: list[Any], steps: tuple[int, int]) -> tuple[float, str]:
    """The progress bar's value and text: the place in the queue while all the jobs wait, then the steps."""
    if not jobs:
        return 0.0, f"{label}: queueing..."
    if all(job.state == "queued" for job in jobs):
        ahead = min((job.position for job in jobs if job.position is not None), default=0)  # 0: next in line
        waiting = "yours is next" if ahead == 0 else f"{ahead} render{'s' if ahead > 1 else ''} ahead of yours"
        return 0.0, f"Waiting: {waiting}"
    done, total = steps
    if not total:
        return 0.0, f"{label}: starting..."
    return min(1.0, done / total), f"{label}: step {done} of {total}"


def _cancel(service, jobs: list[Any], owner: str) -> None:
    for job in jobs:
        if job.is_final:
            continue
        try:
            service.cancel(job.id, owner)
        except KeyartError as exc:  # a closed queue, or a job not this session's: nothing left to stop here
            log.warning("could not cancel job %s: %s", job.id, exc)
