"""The text matching of bench/prompt_quality.py: which labelled characters, places and objects a
prompt names (its docstring gives the rules), and a prompt's words for the distinctness measure.
"""

from __future__ import annotations

import re
import unicodedata

TITLES = (  # words before a name that are how it is addressed, not part of the name to match
    "detective sergeant", "detective inspector", "chief inspector", "inspector", "detective", "sergeant", "constable",
    "commissioner", "captain", "commander", "admiral", "ambassador", "lieutenant", "professor", "doctor", "dr.", "dr",
    "lady", "lord", "sir", "dame", "mrs.", "mrs", "mr.", "mr", "miss", "ms.", "ms",
)  # fmt: skip
# Function words carry no scene; left in, they make every pair of prompts look alike.
STOPWORDS = frozenset("a an and as at by for from in into of on or over the to under with its their her his".split())
_FOLD = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "ł": "l", "đ": "d", "þ": "th", "’": "'"})
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
_WEIGHT = re.compile(r":\s*\d+(?:\.\d+)?\s*\)")  # A1111's "(lantern:1.2)": the number is no word of the scene


def fold(text: str) -> str:
    """Lower case, accents off, one apostrophe: "Øyvind Brekke’s" -> "oyvind brekke's"."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def strip_title(name: str) -> str:
    """"Detective Sergeant Jean-Luc Okafor" -> "Jean-Luc Okafor"; a bare title is kept as the name."""
    words = name.split()
    while len(words) > 1:
        for title in TITLES:
            size = len(title.split())
            if len(words) > size and fold(" ".join(words[:size])) == title:
                words = words[size:]
                break
        else:
            break
    return " ".join(words)


def candidates(entities: dict[str, list[str]]) -> dict[tuple[str, str], list[str]]:
    """{(kind, label): the folded forms that name it}: a character's untitled name and its first and
    last word (unless another character of the episode shares that word), a place's whole name."""
    people = {name: strip_title(name).split() for name in entities.get("characters", [])}
    counts: dict[str, int] = {}
    for words in people.values():
        for word in {fold(words[0]), fold(words[-1])}:
            counts[word] = counts.get(word, 0) + 1
    forms: dict[tuple[str, str], list[str]] = {}
    for name, words in people.items():
        ends = [w for w in dict.fromkeys([fold(words[0]), fold(words[-1])]) if counts[w] == 1]
        forms[("characters", name)] = list(dict.fromkeys([fold(" ".join(words)), *ends]))
    for place in entities.get("places", []):
        forms[("places", place)] = [fold(re.sub(r"^(the|a|an)\s+", "", place, flags=re.IGNORECASE))]
    return forms


def _spans(form: str, text: str) -> list[tuple[int, int]]:
    pattern = r"(?<![\w-])" + re.escape(form) + r"(?!\w|-\w)"
    return [m.span() for m in re.finditer(pattern, text)]


def named(entities: dict[str, list[str]], text: str) -> set[str]:
    """The labels (characters and places) that `text` names, by the rules in bench/prompt_quality.py's docstring."""
    folded = fold(text)
    spans = {key: [s for form in forms for s in _spans(form, folded)] for key, forms in candidates(entities).items()}
    hits: set[str] = set()
    for key, own in spans.items():
        others = [t for other, found in spans.items() if other != key for t in found]
        # A match only inside another label's longer match is that label's ("Gullhaven" in "Gullhaven Lighthouse").
        if any(not any(t[0] <= s[0] and s[1] <= t[1] and t[1] - t[0] > s[1] - s[0] for t in others) for s in own):
            hits.add(key[1])
    return hits


def objects_named(objects: list[str], text: str) -> set[str]:
    """The objects whose head noun (last word), singular or plural ("crates": "crate"; "box": "boxes"), `text` names."""
    folded = fold(text)
    hits = set()
    for obj in objects:
        head = fold(obj.split()[-1])
        forms = {head, head[:-1], head[:-2]} if head.endswith("es") else {head, head[:-1]} if head.endswith("s") else {head, head + "s", head + "es"}
        if any(_spans(form, folded) for form in forms if form):
            hits.add(obj)
    return hits


def words(text: str) -> set[str]:
    """The words of a prompt, folded, without weights, possessive 's and function words."""
    found = (w.removesuffix("'s") for w in _WORD.findall(fold(_WEIGHT.sub(")", text))))
    return {w for w in found if w not in STOPWORDS}


def jaccard_distance(a: set[str], b: set[str]) -> float:
    union = a | b
    return 1.0 - len(a & b) / len(union) if union else 0.0
