"""The campaign package: posts.md and posts.csv of every post, the images, campaign.json, all in campaign.zip.

The last brand-safety check runs here, on the copy and prompts as they stand (edits included); a
blocked post is listed with its reason, without its text or image (campaign.json keeps the text to
edit). Every file is written atomically.
"""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING, Any

from ..platforms import PLATFORMS, post_text
from .campaign_state import STATE_FILE, replacing, save, write_atomic
from .campaign_steps import EXPORT

if TYPE_CHECKING:
    from .campaign_steps import Session

MARKDOWN, TABLE, ZIP = "posts.md", "posts.csv", "campaign.zip"
COLUMNS = [
    "platform", "status", "text", "hashtags", "post", "characters", "limit", "image", "video", "gif", "aspect", "width", "height", "seed",
    "style", "prompt", "negative_prompt", "grounding", "llm", "engine", "blocked_at", "blocked", "error",
]  # fmt: skip


def rows(session: Session) -> list[dict[str, Any]]:
    """One row per post, in the brief's order: what it says, its image, and why it is not ready when it is not."""
    c, out = session.campaign, []
    grounding = c.output("grounding").source if c.steps["grounding"].output else ""
    for name, post in c.posts.items():
        where, steps = PLATFORMS[name], post.steps
        copy = c.output("copy", name) if steps["copy"].output else None
        prompt = c.output("prompt", name) if steps["prompt"].output else None
        image = c.output("image", name) if steps["image"].output else None
        if post.blocked:  # blocked text is never exported: campaign.json keeps it, to be edited
            copy = prompt = None
        text = post_text(copy.text, copy.hashtags) if copy else ""
        error = next((f"{s}: {r.error}" for s, r in steps.items() if r.error), "")
        status = "blocked" if post.blocked else "ready" if image else "incomplete"
        trace = steps["copy"].trace
        out.append({
            "platform": where.title, "status": status, "text": copy.text if copy else "", "hashtags": " ".join(copy.hashtags) if copy else "",
            "post": text, "characters": where.length(text), "limit": where.limit, "image": image.path if image else "",
            "video": (image.video or "") if image else "", "gif": (image.gif or "") if image else "",
            "aspect": where.aspect.ratio, "width": where.aspect.width, "height": where.aspect.height, "seed": image.seed if image else None,
            "style": c.brief.style, "prompt": prompt.prompt if prompt else "", "negative_prompt": prompt.negative_prompt if prompt else "",
            "grounding": grounding, "llm": trace.label if trace else c.llm, "engine": f"{image.engine}:{image.model}" if image else "",
            "blocked_at": post.blocked.step if post.blocked else "", "blocked": post.blocked.reason if post.blocked else "", "error": error,
        })  # fmt: skip
    return out


def markdown(session: Session, table: list[dict[str, Any]]) -> str:
    c, source = session.campaign, session.source
    b, title = c.brief, f": “{source['title']}”" if source["title"] else ""
    lines = [f"# {source['show']} {b.label}{title}: social campaign", ""]
    written = "offline rules (no language model)" if c.llm == "offline" else c.llm
    lines += [f"- **Goal:** {b.goal}", f"- **Audience:** {b.audience}", f"- **Tone:** {b.tone}", f"- **Call to action:** {b.call_to_action}",
              f"- **Style:** {b.style}", f"- **Written by:** {written}"]  # fmt: skip
    if c.steps["grounding"].output:
        g = c.output("grounding")
        where = f"the catalog's art (prompt {g.prompt_key[:12]}, seed {g.seed})" if g.source == "catalog" else f"a prompt written now by {g.source} (seed {g.seed})"
        lines.append(f"- **Images start from:** {where}")
    if any(r["image"] for r in table) and c.engine == "preview":
        lines.append("- **Images:** offline preview cards, not SDXL renders (set KEYART_SDXL_MODEL to render)")
    lines.append(f"- **Campaign:** {c.id}, created {c.created}")
    if c.steps["strategy"].output:
        s = c.output("strategy")
        lines += ["", "## Strategy", "", f"**Angle:** {s.angle}", "", f"**Key message:** {s.key_message}"]
        lines += ["", f"**Pillars:** {'; '.join(s.pillars)}"] if s.pillars else []
    blocked = [r for r in table if r["status"] == "blocked"]
    if blocked:
        lines += ["", f"**Held back by the brand-safety check:** {', '.join(r['platform'] for r in blocked)} (see below)"]
    for r in table:
        lines += ["", f"## {r['platform']} ({r['aspect']}, {r['width']}x{r['height']})" + ("" if r["status"] == "ready" else f": {r['status']}"), ""]
        if r["status"] == "blocked":
            lines += [f"**Blocked at the {r['blocked_at']} step:** {r['blocked']}", ""]
        if r["post"]:
            lines += [r["post"], ""]
        if r["image"]:
            lines += [f"![{r['platform']} image]({r['image']})", ""]
        if r["video"]:
            lines += [f"Motion post: [{r['video']}]({r['video']}) ([GIF]({r['gif']}))", ""]
        if r["error"]:
            lines += [f"**Not finished:** {r['error']}", ""]
        if r["post"]:
            lines.append(f"*{r['characters']}/{r['limit']} characters" + (f" · seed {r['seed']}" if r["seed"] is not None else "") + "*")
        if r["prompt"]:
            lines += ["", f"Prompt: `{r['prompt']}`"]
    return "\n".join(lines) + "\n"


def export(session: Session) -> dict[str, Any]:
    """Write the package into the campaign's folder; returns what it holds (also kept in campaign.json)."""
    import pandas as pd

    c, folder = session.campaign, session.tools.folder
    # 1. The last brand-safety check, on every post not already held back.
    for name, post in c.posts.items():
        if post.blocked is None:
            session.gate(name, EXPORT, session.texts(name))
    # 2. The posts as a table and as a page.
    table = rows(session)
    buffer = io.StringIO()
    pd.DataFrame(table, columns=COLUMNS).to_csv(buffer, index=False)
    write_atomic(folder / TABLE, buffer.getvalue().encode("utf-8"))
    write_atomic(folder / MARKDOWN, markdown(session, table).encode("utf-8"))
    # 3. campaign.json, naming the package; then the zip of it all.
    images = [f for r in table for f in (r["image"], r["video"], r["gif"]) if f]
    package = {"zip": ZIP, "files": [MARKDOWN, TABLE, STATE_FILE, *images], "ready": [r["platform"] for r in table if r["status"] == "ready"],
               "blocked": {r["platform"]: r["blocked"] for r in table if r["status"] == "blocked"},
               "incomplete": {r["platform"]: r["error"] or "not run" for r in table if r["status"] == "incomplete"}}  # fmt: skip
    with session.lock:
        c.package = package
        save(c, folder)
    with replacing(folder / ZIP) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in package["files"]:
            z.write(folder / name, arcname=name)
    session.tell(EXPORT, None, "done", str(folder / ZIP))
    return package
