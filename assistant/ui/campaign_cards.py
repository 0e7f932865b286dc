"""The Campaign tab's posts as each platform would show them (header, copy with coloured hashtags, image
at the platform's aspect), and the download of the campaign's package.
"""

from __future__ import annotations

import html
from pathlib import Path

import streamlit as st

from ..platforms import PLATFORMS, post_text
from ..workflows.campaign import Campaign
from . import common

# How each platform's card looks: its accent colour, its hashtag colour, whether the image comes before the copy, the byline.
CARDS = {
    "instagram": ("#d62976", "#00376b", True, "Sponsored"),
    "facebook": ("#1877f2", "#1877f2", False, "Sponsored"),
    "x": ("#0f1419", "#1d9bf0", False, "Ad"),
    "linkedin": ("#0a66c2", "#0a66c2", False, "Promoted"),
    "tiktok": ("#fe2c55", "#25a3c2", True, "Sponsored"),
}


# -- the posts as they would look -----------------------------------------------------------------


def previews(campaign: Campaign, folder: Path, titles: dict[str, str]) -> None:
    """Every post of the campaign side by side; `titles` names the chain's steps (for a blocked or unfinished post)."""
    st.markdown("**The posts**, as each platform would show them")
    for column, name in zip(st.columns(len(campaign.posts)), campaign.posts):
        with column:
            _card(campaign, folder, name, titles)


def _card(campaign: Campaign, folder: Path, name: str, titles: dict[str, str]) -> None:
    """One post as its platform shows it: the header, the copy with its hashtags, the image at the platform's aspect."""
    where, post = PLATFORMS[name], campaign.posts[name]
    accent, link, image_first, byline = CARDS[name]
    show = campaign.brief.show or "The show"
    handle = "@" + "".join(ch for ch in show.lower() if ch.isalnum())
    with st.container(border=True):
        st.html(
            f'<div style="border-top:4px solid {accent};padding-top:6px;font-family:sans-serif;font-size:0.85rem;line-height:1.4">'
            f'<b style="color:{accent}">{where.title}</b> <span style="color:#888">· {where.aspect.ratio} · {where.aspect.width}x{where.aspect.height}</span><br>'
            f'<b>{html.escape(show)}</b> <span style="color:#888">{html.escape(handle)} · {byline}</span></div>'
        )
        if post.blocked is not None:
            st.error(f"Blocked at the {titles.get(post.blocked.step, post.blocked.step).lower()} step: {common.plain(post.blocked.reason)}", icon=":material/block:")
            return
        copy, image = post.steps["copy"].output, post.steps["image"].output
        text = post_text(copy["text"], copy["hashtags"]) if copy else ""
        body = " ".join(
            f'<span style="color:{link}">{html.escape(w)}</span>' if w.startswith("#") else html.escape(w) for w in text.replace("\n", " \n ").split(" ")
        ).replace(" \n ", "<br>")
        caption = f'<div style="font-family:sans-serif;font-size:0.85rem;line-height:1.45">{body}</div>'
        if not image_first and copy:
            st.html(caption)
        if image and image.get("video") and (folder / image["video"]).is_file():  # a motion post: the loop, the still behind it
            st.video(str(folder / image["video"]), loop=True, autoplay=True, muted=True)
            st.caption("Motion post (MP4 loop)" + (": preview frames, not an SDXL render" if image.get("preview") else ""))
        elif image:
            st.image(str(folder / image["path"]), caption="preview card, not an SDXL render" if image.get("preview") else None)
        elif copy:
            st.caption("No image yet.")
        if image_first and copy:
            st.html(caption)
        if copy:
            st.caption(f"{where.length(text)}/{where.limit} characters")
        if not copy:
            error = next((f"{titles[s].lower()}: {r.error}" for s, r in post.steps.items() if r.error), "not made yet")
            st.warning(f"Not finished ({common.plain(error)}).", icon=":material/pending:")


def package_download(campaign: Campaign, folder: Path) -> None:
    """The package's zip as a download button, once the chain has written it."""
    package = campaign.package
    zipped = folder / (package or {}).get("zip", "campaign.zip")
    if not package or not zipped.is_file():
        return
    blocked, incomplete = len(package.get("blocked", {})), len(package.get("incomplete", {}))
    held = "".join([f", {blocked} blocked" if blocked else "", f", {incomplete} incomplete" if incomplete else ""])
    slug = "".join(ch if ch.isalnum() else "-" for ch in (campaign.brief.show or "campaign").lower())
    part = campaign.brief.label.replace(" ", "")
    st.download_button(
        f"Download the package ({len(package.get('ready', []))} ready{held})", data=zipped.read_bytes, file_name=f"{slug}-{part}-{campaign.id}.zip",
        mime="application/zip", icon=":material/download:", key=f"cmp:{campaign.id}:zip", on_click="ignore",
    )  # fmt: skip
    st.caption(f"posts.md, posts.csv, the images and campaign.json, in {zipped}")
