"""Social platforms for campaign posts: length limit, hashtag count, image aspect and SDXL size.

Limits are the platforms' published caption limits except Facebook, whose 63,206-character limit
is no guide: posts past about 500 characters are cut behind "See more", so keyart keeps to 500.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Aspect:
    """An image shape: its ratio, the SDXL training bucket that renders it, and how to fill it."""

    ratio: str
    width: int
    height: int
    composition: str  # the framing phrase an image brief and prompt use for this shape


# SDXL training buckets (about one megapixel each) nearest to the platforms' ratios.
ASPECTS: dict[str, Aspect] = {
    "1:1": Aspect("1:1", 1024, 1024, "square 1:1 frame, subject centred, balanced margins"),
    "4:5": Aspect("4:5", 896, 1152, "portrait 4:5 frame, subject in the upper two thirds"),
    "9:16": Aspect("9:16", 768, 1344, "vertical 9:16 frame, subject in the upper half, clear space at the bottom"),
    "16:9": Aspect("16:9", 1344, 768, "widescreen 16:9 frame, subject on the left third, open space to the right"),
}


@dataclass(frozen=True)
class Platform:
    name: str  # as a brief names it
    title: str  # as people write it
    limit: int  # characters for the whole post, hashtags included
    hashtags: int  # at most this many
    aspect: Aspect
    weighted: bool = False  # X counts most non-Latin characters (CJK, emoji) as two

    def length(self, text: str) -> int:
        return weighted_length(text) if self.weighted else len(text)

    def describe(self) -> dict[str, object]:
        """The platform as a step's input records it."""
        a = self.aspect
        return {"name": self.name, "title": self.title, "limit": self.limit, "hashtags": self.hashtags, "aspect": a.ratio, "width": a.width, "height": a.height, "composition": a.composition}


PLATFORMS: dict[str, Platform] = {
    # Instagram: 2,200-character captions; 30 hashtags allowed, 3-5 recommended; 4:5 fills the feed.
    "instagram": Platform("instagram", "Instagram", 2200, 5, ASPECTS["4:5"]),
    # Facebook: see the module docstring for 500; square images show whole in every feed.
    "facebook": Platform("facebook", "Facebook", 500, 3, ASPECTS["1:1"]),
    # X: 280 weighted characters; one or two hashtags; 16:9 shows uncropped in the timeline.
    "x": Platform("x", "X", 280, 2, ASPECTS["16:9"], weighted=True),
    # LinkedIn: 3,000-character posts; about three hashtags; square images.
    "linkedin": Platform("linkedin", "LinkedIn", 3000, 3, ASPECTS["1:1"]),
    # TikTok: 2,200-character captions (photo posts); 9:16 is the full screen.
    "tiktok": Platform("tiktok", "TikTok", 2200, 5, ASPECTS["9:16"]),
}
ELLIPSIS = "…"


def platform(name: str) -> Platform:
    """The platform `name` names ("twitter" is X); ValueError naming the choices otherwise."""
    key = str(name).strip().lower()
    if key in ("twitter", "x.com"):
        key = "x"
    if key not in PLATFORMS:
        raise ValueError(f"unknown platform {name!r}; choose from {', '.join(PLATFORMS)}")
    return PLATFORMS[key]


def weighted_length(text: str) -> int:
    """X's count (twitter-text v3): code points in Latin and general punctuation ranges weigh 1, others 2."""
    light = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
    return sum(1 if any(a <= ord(c) <= b for a, b in light) else 2 for c in unicodedata.normalize("NFC", text))


def hashtag(text: str) -> str:
    """"#MaraQuill" from "Mara Quill", "#TernAnchor" from "the Tern & Anchor"; "" when nothing is left."""
    words = re.findall(r"[^\W_]+", re.sub(r"^(the|a|an)\s+", "", text.strip().lstrip("#"), flags=re.IGNORECASE))
    tag = "".join(w if w[:1].isupper() else w[:1].upper() + w[1:] for w in words)
    return f"#{tag}" if tag else ""


def post_text(text: str, hashtags: list[str]) -> str:
    """The post as published: the copy, a blank line, the hashtags."""
    tags = " ".join(hashtags)
    return f"{text.strip()}\n\n{tags}" if tags else text.strip()


def shorten(text: str, limit: int, length=len) -> str:
    """`text` cut at a word boundary, with an ellipsis, so that `length(result) <= limit` ("" if no word fits)."""
    if length(text) <= limit:
        return text
    words = text.split(" ")
    while words and length(" ".join(words).rstrip(" ,;:-") + ELLIPSIS) > limit:
        words.pop()
    return " ".join(words).rstrip(" ,;:-") + ELLIPSIS if words else ""


def fit(text: str, hashtags: list[str], where: Platform, *, keep: str = "") -> tuple[str, list[str], str | None]:
    """(text, hashtags, note): the post within `where`'s limit, trimmed at a word boundary; note says what was cut.

    `keep`, when the text ends with it (the call to action), stays whole: the words before it are cut.
    """
    text, tags = text.strip(), hashtags[: where.hashtags]
    notes = [f"dropped {len(hashtags) - len(tags)} hashtag(s) past {where.title}'s {where.hashtags}"] if len(tags) < len(hashtags) else []
    before = where.length(post_text(text, tags))
    if before <= where.limit:
        return text, tags, "; ".join(notes) or None
    # 1. Trim the copy before `keep` (an ellipsis shows the cut) so that the whole post fits.
    keep = keep.strip() if keep.strip() and text.lower().endswith(keep.strip().lower()) else ""
    head, tail = (text[: len(text) - len(keep)].rstrip(), " " + text[len(text) - len(keep) :]) if keep else (text, "")
    room = where.limit - where.length(post_text(tail.strip(), tags)) - (1 if tail else 0)
    trimmed = (shorten(head, max(room, 0), where.length) + tail).strip()
    # 2. Still too long: hashtags go, last first.
    while tags and where.length(post_text(trimmed, tags)) > where.limit:
        tags.pop()
    notes.append(f"trimmed the copy at a word boundary to fit {where.title}'s {where.limit} characters (it had {before})")
    return trimmed, tags, "; ".join(notes)
