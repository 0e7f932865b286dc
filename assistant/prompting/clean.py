"""Make a model's prompt fit for SDXL: one line, no leaked instructions, within CLIP's budget.

Long prompts are kept (the engine's long-prompt support handles them) and a warning says so.
"""

from __future__ import annotations

import re

CLIP_BUDGET = 75  # CLIP reads 77 tokens, two of them start and end markers
# How much of one summary the techniques read: about 3,000 words, ten times a long episode
# summary. Past it the text is cut at a sentence end and the trace says so; this bounds the offline
# rules' time (under a second) and what a language model's context is sent.
MAX_SUMMARY_CHARS = 20_000
# Phrases of our own templates, or of chatty replies, that must never reach the image model.
# Lookarounds rather than \b, since several phrases end in ':' or ','.
_LEAKS = re.compile(
    r"(?<!\w)(follow up:|intermediate answer:|so the final answer is|negative prompt:|json|subject first|"
    r"token budget|ignore (all |any )?(previous|prior) instructions|as an ai|here is|here's|sure[,!]|i cannot|i can't)(?!\w)",
    re.IGNORECASE,
)
_PREFIX = re.compile(r"^\s*(?:(?:positive\s+)?prompt|sdxl prompt|image prompt)\s*[:\-]\s*", re.IGNORECASE)
# CLIP's pre-tokenizer: words, single digits, runs of punctuation. BPE may split a rare word further,
# so this count is a floor; long words add a token per 6 letters as a fair estimate.
_PIECES = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+", re.UNICODE)


def one_line(text: str) -> str:
    """Collapse newlines and runs of spaces; strip quotes, code fences and "Prompt:" prefixes."""
    text = text.replace("```", " ")
    parts = [p.strip() for p in re.split(r"[\r\n]+", text) if p.strip()]
    text = ", ".join(_PREFIX.sub("", p.strip("\"'`").strip()).strip().strip(",") for p in parts)
    text = re.sub(r"\s+", " ", text).strip().strip("\"'`").strip()
    return re.sub(r"(,\s*){2,}", ", ", text)


def clean_prompt(text: str) -> tuple[str, list[str]]:
    """(cleaned prompt, notes): one line, and comma-separated phrases that leak instructions dropped."""
    notes: list[str] = []
    phrases = [p.strip() for p in one_line(text).split(",")]
    kept = [p for p in phrases if p and not _LEAKS.search(p)]
    if len(kept) < len([p for p in phrases if p]):
        notes.append(f"dropped {len([p for p in phrases if p]) - len(kept)} phrase(s) that read as instructions, not image content")
    return ", ".join(kept), notes


def clip_tokens(text: str) -> int:
    """An estimate of CLIP's token count for `text` (without the start and end markers)."""
    return sum(1 + (len(piece) - 1) // 6 for piece in _PIECES.findall(text.lower()))


def budget_note(style: str, text: str) -> str | None:
    tokens = clip_tokens(text)
    if tokens <= CLIP_BUDGET:
        return None
    return f"{style}: prompt is about {tokens} CLIP tokens (budget {CLIP_BUDGET}); kept whole for the engine's long-prompt support"


def finalize(prompts: list, styles: list, notes: list[str]) -> list:
    """The model's prompts in the requested styles' order, cleaned; notes collect what changed.

    Expects every style to be present (see `missing_styles`); extra styles are dropped.
    """
    from ..schemas import StylePrompt

    by_name = {p.style.strip().lower(): p for p in prompts}
    extra = sorted(set(by_name) - {s.name.lower() for s in styles})
    if extra:
        notes.append(f"ignored prompts for styles that were not asked for: {', '.join(extra)}")
    out = []
    for style in styles:
        given = by_name[style.name.lower()]
        prompt, dropped = clean_prompt(given.prompt)
        negative, _ = clean_prompt(given.negative_prompt)
        notes += [f"{style.name}: {d}" for d in dropped]
        if (note := budget_note(style.name, prompt)) is not None:
            notes.append(note)
        out.append(StylePrompt(style=style.name, prompt=prompt, negative_prompt=negative))
    return out


def missing_styles(prompts: list, styles: list) -> list[str]:
    """Styles with no usable prompt (absent, or empty once cleaned)."""
    usable = {p.style.strip().lower() for p in prompts if clean_prompt(p.prompt)[0]}
    return [s.name for s in styles if s.name.lower() not in usable]


def clip_summary(text: str, notes: list[str], what: str = "the summary") -> str:
    """`text` cut to MAX_SUMMARY_CHARS at the last sentence end before it (else at a space), with a
    note in `notes` saying how much was read; shorter texts come back as they are."""
    if len(text) <= MAX_SUMMARY_CHARS:
        return text
    head = text[:MAX_SUMMARY_CHARS]
    end = max(head.rfind(". "), head.rfind("! "), head.rfind("? "))
    cut = head[: end + 1] if end > MAX_SUMMARY_CHARS // 2 else head.rsplit(" ", 1)[0]
    notes.append(f"{what} is {len(text):,} characters; the first {len(cut):,} were read (keyart reads up to {MAX_SUMMARY_CHARS:,})")
    return cut
