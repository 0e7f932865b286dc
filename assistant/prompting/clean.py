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
# CLIP's contractions, which its pre-tokenizer splits off before anything else.
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")
# Byte-pair encoding keeps a common word whole; past this many UTF-8 bytes a word is counted as
# split, one more token per WORD_STEP bytes (rare names, accents: two bytes a letter, split sooner).
WHOLE_WORD_BYTES, WORD_STEP = 8, 5
# Unicode's White_Space property, what the tokenizer's \s means (Python's str.isspace() also takes
# the separators U+001C-U+001F, which CLIP keeps as characters).
WHITE_SPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_WHITE_RUNS = re.compile("[" + "".join(sorted(WHITE_SPACE)) + "]+")


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


def clip_pieces(text: str) -> list[str]:
    """`text` split as CLIP's tokenizer splits it before byte-pair encoding: NFC, runs of white
    space as one, lower case; then the contractions, runs of letters (Unicode L), single digits
    (Unicode N) and runs of anything else but spaces, in the order its pre-tokenizer tries them."""
    import unicodedata

    def kind(c: str) -> str:
        category = unicodedata.category(c)
        return "space" if c in WHITE_SPACE else category[0] if category[0] in "LN" else "other"

    text = _WHITE_RUNS.sub(" ", unicodedata.normalize("NFC", text)).lower()
    pieces, i, n = [], 0, len(text)
    while i < n:
        contraction = next((c for c in _CONTRACTIONS if text.startswith(c, i)), None)
        if contraction:
            pieces.append(contraction)
            i += len(contraction)
            continue
        k = kind(text[i])
        if k == "space":
            i += 1
            continue
        j = i + 1
        if k != "N":  # a digit is a piece of its own; letters and other characters run on
            while j < n and kind(text[j]) == k:
                j += 1
        pieces.append(text[i:j])
        i = j
    return pieces


def clip_tokens(text: str) -> int:
    """An estimate of CLIP's token count for `text` (without the start and end markers): CLIP's own
    pieces (`clip_pieces`), each a token, and a long or non-ASCII word one more per WORD_STEP bytes."""
    total = 0
    for piece in clip_pieces(text):
        size = len(piece.encode("utf-8"))
        total += 1 + max(0, -(-(size - WHOLE_WORD_BYTES) // WORD_STEP))
    return total


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
