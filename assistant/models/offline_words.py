"""Word lists behind the offline model: names that are not names, places, roles, visual verbs, moods, light.

Small lexicons tuned to the kind of text a TV catalog holds; the rules in `offline_rules` read them.
"""

from __future__ import annotations

# Capitalised words that are not names (sentence openers, pronouns, calendar words).
STOP = frozenset(
    """A An The And But Or Nor So Yet For Of To In On At By From With Without Into Onto Over Under After Before
    While When Where Who Whom Whose Which What Why How That This These Those There Here Then Now Once As If
    Though Although Because Since Until Unless Each Every Some Any All Both No Not Nothing Nobody Someone
    He She It They We You I Me Him Her Them Us His Hers Its Their Our Your My Meanwhile Later Back Soon Still
    Even Just Also Only Finally Eventually Suddenly Inside Outside Behind Beyond Deep Off Up Down Out Near
    Season Episode Part Chapter Act Scene Finale Pilot Prologue Epilogue Monday Tuesday Wednesday Thursday
    Friday Saturday Sunday January February March April June July August September October November December
    Christmas Easter God OK""".split()
)
HONORIFICS = ("Captain", "Father", "Mother", "Sister", "Brother", "Doctor", "Dr", "Mr", "Mrs", "Ms", "Miss", "Sir",
              "Lady", "Lord", "Inspector", "Sergeant", "Constable", "Detective", "Mayor", "Aunt", "Uncle", "Professor")

# A place's type word -> how it looks; the word in a name ("Corran Island") makes it a place.
PLACE_LOOKS = {
    "lighthouse": "white lighthouse tower on a rocky headland", "harbour": "fishing harbour with a stone quay",
    "harbor": "fishing harbor with a stone quay", "port": "working fishing port", "quay": "old stone quay",
    "pier": "long wooden pier", "wharf": "timber wharf", "dock": "working docks", "docks": "working docks",
    "island": "windswept rocky island", "isle": "windswept rocky isle", "islands": "scattered rocky islands",
    "cannery": "rusting seafront cannery", "factory": "hulking old factory", "mill": "old stone mill",
    "chapel": "ruined stone chapel", "church": "weathered stone church", "abbey": "ruined abbey",
    "cathedral": "vast gothic cathedral", "bay": "sheltered bay of grey water", "cove": "hidden rocky cove",
    "street": "narrow cobbled street", "road": "lonely coast road", "lane": "narrow cobbled lane",
    "square": "small town square", "cliffs": "sheer sea cliffs", "cliff": "sheer sea cliff",
    "row": "row of narrow terraced houses", "alley": "narrow back alley", "avenue": "wide tree-lined avenue",
    "terrace": "long terrace of houses", "yard": "cobbled yard", "mews": "cobbled mews",
    "head": "high headland", "headland": "high headland", "point": "rocky point", "rock": "jagged rock in the surf",
    "rocks": "jagged rocks in the surf", "reef": "jagged reef in the surf", "beach": "wide empty beach",
    "sands": "wide wet sands at low tide", "strand": "long empty strand", "inn": "low-beamed old inn",
    "tavern": "low-beamed tavern", "pub": "low-beamed harbour pub", "bar": "dim little bar", "hotel": "faded seaside hotel",
    "hall": "old stone hall", "house": "old stone house", "manor": "crumbling manor house", "lodge": "remote lodge",
    "cottage": "stone cottage", "castle": "ruined castle", "tower": "lone stone tower", "bridge": "old stone bridge",
    "station": "empty railway station", "market": "crowded market", "park": "overgrown park", "hill": "bare green hill",
    "moor": "bleak open moor", "forest": "dark forest", "wood": "dark wood", "woods": "dark woods",
    "river": "slow dark river", "lake": "still grey lake", "loch": "still grey loch", "sound": "wide grey sound",
    "farm": "isolated farmhouse", "school": "old schoolhouse", "hospital": "hospital corridor", "cafe": "small cafe",
    "café": "small café", "steps": "steep stone steps", "gate": "iron gate", "causeway": "tidal causeway",
    "valley": "deep valley", "city": "rain-slick city streets", "town": "small town", "village": "small village",
    "estate": "grand estate", "mine": "abandoned mine", "quarry": "abandoned quarry", "shipyard": "shipyard with rusting cranes",
}
PLACE_WORDS = frozenset(PLACE_LOOKS)
VESSEL_LOOKS = {
    "trawler": "fishing trawler", "boat": "fishing boat", "ship": "ship", "ferry": "ferry", "yacht": "yacht",
    "schooner": "tall schooner", "lifeboat": "lifeboat", "skiff": "small skiff", "vessel": "vessel", "tug": "tugboat",
}
# A named place with no type word borrows the first of these that its text mentions.
SETTING_NOUNS = {
    "harbour wall": "harbour wall", "quay": "old stone quay", "causeway": "tidal causeway", "sands": "wide wet sands",
    "harbour": "fishing harbour", "beach": "empty beach", "cliffs": "sea cliffs", "ferry": "ferry landing",
    "surf": "breaking surf", "town": "small coastal town",
}
# Prepositions after which a capitalised name is a place ("at the X", "off X").
PLACE_PREPS = frozenset("at in inside into onto near across beneath below beyond toward towards through off around along outside under over above aboard".split())

# Before a place when it is where the scene happens (a superset of PLACE_PREPS: "row to Corran Island").
LOCATIVE = PLACE_PREPS | {"to", "from", "on"}

# Role noun -> (worth naming in the prompt, how such a person looks): "lighthouse keeper Mara Quill in a yellow oilskin coat".
ROLES = {
    "keeper": (True, "in a yellow oilskin coat"), "harbourmaster": (True, "in a peaked cap and navy pea coat"),
    "harbormaster": (True, "in a peaked cap and navy pea coat"), "diver": (True, "in a black drysuit"),
    "journalist": (True, "with a camera on a strap"), "reporter": (True, "with a camera on a strap"),
    "captain": (True, "in a heavy fisherman's sweater"), "skipper": (True, "in a heavy fisherman's sweater"),
    "fisherman": (True, "in oilskins"), "fisherwoman": (True, "in oilskins"), "sailor": (True, "in a knitted cap"),
    "deckhand": (True, "in a knitted cap"), "smuggler": (True, "in a dark pea coat"), "priest": (True, "in a black cassock"),
    "vicar": (True, "in a black cassock"), "nun": (True, "in a grey habit"), "owner": (False, "in a tailored wool coat"),
    "detective": (True, "in a long raincoat"), "inspector": (True, "in a long raincoat"), "constable": (True, "in uniform"),
    "doctor": (True, "in a white coat"), "nurse": (True, "in a nurse's uniform"), "mayor": (True, "in a dark suit"),
    "teacher": (True, "in a cardigan"), "widow": (True, "in black"), "coastguard": (True, "in a hi-vis jacket"),
}
GROUP_NOUNS = frozenset("crew men women friends family team gang brother sister father mother son daughter husband wife".split())
ADVERBS = frozenset("now then also still alone finally quietly suddenly slowly together even just soon later again never".split())
PRONOUNS = {"she": 1, "he": 1, "they": 2}
DETERMINERS = frozenset("a an the his her their its my our your this that these those every each no one two three some any".split())
MODALS = frozenset("can could will would must may might should shall to".split())
CLAUSE_BREAKS = frozenset("while as when because but before after until which who whose where though although since so then".split())
TRAILING = frozenset("the a an of to with into onto from in on at by for and or her his their its out back".split())

# Visual verbs: base form, weight (3: the body in action; 2: visible but quiet; 1: barely), -ing when not regular.
_VERBS = """
climb 3, relight 3, dive 3, swim 3 swimming, wade 3, row 3, haul 3, drag 3 dragging, pull 3, lift 3, raise 3,
carry 3, ring 3, chain 3, burn 3, leap 3, jump 3, tear 3, fight 3, embrace 3, kneel 3, surface 3, hurl 3, throw 3,
smash 3, plunge 3, rescue 3, flee 3 fleeing, chase 3, race 3, crawl 3, steer 3, sail 3, scramble 3, clutch 3,
hoist 3, dig 3 digging, bury 3, rush 3, run 3 running, dance 3, kiss 3, hug 3 hugging, cling 3, stow 2, break 2,
prise 2, turn 2, sweep 2, guide 2, keep 2, signal 2, walk 2, read 2, watch 2, open 2, find 2, hide 2,
photograph 2, film 2, write 2, stand 2, wait 2, pin 2 pinning, lock 2, lay 2, drop 2 dropping, hand 2, show 2,
track 2, slip 2 slipping, anchor 2, catch 2, stream 2, count 2, cross 2, reach 2, search 2, follow 2, arrive 2,
lower 2, step 2 stepping, shout 2, scream 2, weep 2, pray 2, sing 2, stare 2, spill 2, confront 2, hold 2, light 2,
uncover 2, leave 1, take 1, see 1, hear 1, meet 1, tend 2, bring 1
"""


def _third_person(base: str) -> str:
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        return base + "es"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ies"
    return base + "s"


def _ing(base: str) -> str:
    if base.endswith("ie"):
        return base[:-2] + "ying"
    if base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        return base[:-1] + "ing"
    return base + "ing"


def _verb_table() -> dict[str, tuple[str, int]]:
    """Every form (base, third person, -ing) -> (the -ing form, weight)."""
    table: dict[str, tuple[str, int]] = {}
    for entry in _VERBS.replace("\n", " ").split(","):
        parts = entry.split()
        if not parts:
            continue
        base, weight = parts[0], int(parts[1])
        ing = parts[2] if len(parts) > 2 else _ing(base)
        for form in (base, _third_person(base), ing):
            table[form] = (ing, weight)
    return table


VERBS = _verb_table()
# Words that are nouns far more often than verbs in a summary; only their third-person form is a verb.
NOUN_LIKE = frozenset("light stream film lock drop hand show track anchor count cross reach search step row race tear ring chain hold".split())

# Props and details worth a phrase of their own, longest first so "storm lantern" beats "lantern".
FEATURES = """paper lanterns, storm lantern, oil lamp, great lamp, lantern room, harbour wall, life jacket, chapel door,
chapel steps, cutting gear, safety line, boat shed, cold room, loading doors, bell frame, brass telescope, diving helmet,
lead box, pint glass, lantern, lanterns, lamp, bell, crates, crate, nets, telescope, flare, torch, torches, ledger, logbook,
log, camera, gulls, spire, helmet, drysuit, skiff, rope, chain, keys, deed, cheque, footprints, headlamp, floodlights,
padlock, pane, bunk, vats, gantry, altar, crypt, gallery, mast, tins, window, windows, phone, folder, notices, steps,
breakers, surf, wreck, cargo, flowers, coffin, letter, photograph, knife, gun, fire,
key, keys, map, maps, shard, tape, cassette, portrait, painting, pamphlets, pamphlet, emeralds, jewels, necklace,
hammer, hammers, rifle, pistol, sword, dagger, chest, suitcase, briefcase, envelope, diary, journal, notebook,
newspaper, banner, badge, medal, crown, bottle, teapot, chip, hose, hoses, ladder, statue, mask, candle, candles,
radio, recorder, satchel, page, pillars, manuscript, locket, pocket watch, telegram"""
FEATURE_LIST = sorted((f.strip() for f in FEATURES.replace("\n", " ").split(",") if f.strip()), key=lambda f: (-len(f), f))
ADJECTIVES = frozenset(
    """great old iron brass red black white broken empty sealed rusted rusting wet cracked paper storm lead little small huge
    tiny sunken carved ruined dark bright heavy silver golden green grey blue wooden stone glass sodden flickering single
    second last first long-lost battered torn stolen secret hidden dead drowned lone shattered burning flooded""".split()
)

# Mood: the word for the tone and the word stems that signal it.
MOODS = [
    ("tense", "storm gale lightning squall breakers heaving wreck swell peaks"),
    ("mournful", "drown grief griev funeral mourn widow dead death grave missing lost names"),
    ("brooding", "secret hidden hiding hides smuggl conceal false blank unseen cipher lies debt confess"),
    ("urgent", "chase flee fled escap pursu hunt races rush seconds"),
    ("confrontational", "feud argument fight standoff confront threat claims tears"),
    ("solemn", "procession lanterns whole_town whole_of hundreds together ceremony altar bell"),
    ("tender", "love kiss embrace hug tender"),
    ("eerie", "fog mist ghost answering thirteen footprints nobody no_one"),
]
# Light: time of day, weather, light source; each (phrase, stems), first match by position in the text wins.
TIMES = [
    ("cold dawn light", "dawn sunrise daybreak"), ("pale morning light", "morning"), ("harsh midday sun", "noon midday"),
    ("low afternoon sun", "afternoon"), ("rust-red sunset glow", "sunset"), ("low golden dusk light", "dusk evening twilight"),
    ("night, deep blue shadows", "night midnight moon dark"),
]
WEATHER = [
    ("storm-dark sky, flashes of lightning", "lightning"), ("storm clouds, wind-whipped spray", "storm gale squall"),
    ("thick sea fog", "fog mist"), ("driving rain, wet reflections", "rain soaked downpour"), ("falling snow", "snow"),
    ("murky green underwater light", "underwater dives$ dive$ seabed silt"), ("bright sunlight", "sunlit sunny sunshine"),
]
SOURCES = [
    ("glowing paper lanterns", "paper_lanterns"), ("warm lantern glow", "lantern candle"), ("red flare light", "flare"),
    ("harsh floodlights", "floodlights"), ("sweeping lighthouse beam", "beam lamp"), ("torch beams cutting the dark", "torch headlamp"),
    ("firelight", "fire"),
]
CROWD = ("crowd", "townsfolk", "procession", "whole town", "whole of", "hundreds", "villagers", "congregation", "fleet", "everyone")
HEIGHTS = ("climb", "tower", "gallery", "mast", "spire", "cliff", "steps", "lantern room")
WATER = ("swim", "wade", "rowing", "surf", "breakers", "dives$", "dive$", "underwater", "waterline")
