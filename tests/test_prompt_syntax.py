"""keyart's prompt language against behaviour tables: attention, BREAK, LoRA tags, editing, alternation."""

import pytest

from imagegen import InvalidRequest, prompt_schedule
from imagegen.prompt_schedule import attention_runs, loras, schedule
from imagegen.prompt_syntax import Alternation, Break, Edit, Group, Lora, LoraTag, Text, extract_loras, parse

# Attention as A1111's wiki documents it ("Attention/emphasis"), with the floats its arithmetic gives:
# ((x)) is 1.1 * 1.1 = 1.2100000000000002, so the same bits give the same embeddings.
ATTENTION = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("a ((word))", [("a ", 1.0), ("word", 1.1 * 1.1)]),
    ("a (((word)))", [("a ", 1.0), ("word", 1.1 * 1.1 * 1.1)]),
    ("a [word]", [("a ", 1.0), ("word", 1 / 1.1)]),
    ("a [[word]]", [("a ", 1.0), ("word", 1 / 1.1 / 1.1)]),
    ("a (word:1.5)", [("a ", 1.0), ("word", 1.5)]),
    ("a (word:0.25)", [("a ", 1.0), ("word", 0.25)]),
    ("a (word: 1.5 )", [("a ", 1.0), ("word", 1.5)]),
    ("a (word:-1)", [("a ", 1.0), ("word", -1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("[unbalanced", [("unbalanced", 1 / 1.1)]),
    ("stray) bracket]", [("stray) bracket]", 1.0)]),
    (r"\(literal\]", [("(literal]", 1.0)]),
    (r"a \(word\) and \[this\] and \\", [("a (word) and [this] and \\", 1.0)]),
    (r"ratio 16\:9 \| wide", [("ratio 16:9 | wide", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a: colon | bar", [("a: colon | bar", 1.0)]),
    ("(a:b)", [("a:b", 1.1)]),
    ("(a|b)", [("a|b", 1.1)]),
    ("", [("", 1.0)]),
    ("[(a]", [("a", 1.1 / 1.1)]),  # a closer of an enclosing group ends the groups inside it
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ("a ", 1.0),
            ("house", 1.5730000000000004),
            (" ", 1.1),
            ("on", 1.0),
            (" a ", 1.1),
            ("hill", 0.55),
            (", sun, ", 1.1),
            ("sky", 1.4641000000000006),
            (".", 1.1),
        ],
    ),
]


@pytest.mark.parametrize("prompt, expected", ATTENTION, ids=[p or "<empty>" for p, _ in ATTENTION])
def test_attention_table(prompt, expected):
    assert attention_runs(prompt) == [expected]
    # Nothing changes during the render: one segment, the prompt as written.
    assert prompt_schedule(prompt, 10) == [(10, prompt)] and prompt_schedule(prompt, 30) == [(30, prompt)]


def test_weights_are_exact_floats():
    [[(_, weight)]] = attention_runs("((x))")
    assert weight == 1.2100000000000002


def test_break_splits_and_is_never_weighted():
    assert attention_runs("a cat BREAK a dog") == [[("a cat", 1.0)], [("a dog", 1.0)]]
    assert attention_runs("(a cat BREAK a dog)") == [[("a cat", 1.1)], [("a dog", 1.1)]]
    # Two BREAKs leave an empty part between them; only the whole word counts.
    assert attention_runs("a BREAK BREAK b") == [[("a", 1.0)], [("", 1.0)], [("b", 1.0)]]
    assert attention_runs("BREAKFAST, aBREAK") == [[("BREAKFAST, aBREAK", 1.0)]]
    assert prompt_schedule("[a BREAK b:c:5]", 10) == [(5, "a BREAK b"), (10, "c")]


def cycle(texts):
    """An alternation's schedule at 10 and 30 steps: option 1 at step 1, option 2 at step 2, and round."""
    return tuple([(step, texts[(step - 1) % len(texts)]) for step in range(1, steps + 1)] for steps in (10, 30))


# Prompt editing and alternation, as A1111's wiki documents them ("Prompt editing", "Alternating
# Words"): the text in force up to and including each step, at 10 and at 30 steps.
SCHEDULES = [
    ("a [cat:dog:0.5] on a rock", [(5, "a cat on a rock"), (10, "a dog on a rock")], [(15, "a cat on a rock"), (30, "a dog on a rock")]),
    ("a [fantasy:cyberpunk:16] landscape", [(10, "a fantasy landscape")], [(16, "a fantasy landscape"), (30, "a cyberpunk landscape")]),
    ("a [dog:3] cat", [(3, "a  cat"), (10, "a dog cat")], [(3, "a  cat"), (30, "a dog cat")]),
    ("a [dog::3] cat", [(3, "a dog cat"), (10, "a  cat")], [(3, "a dog cat"), (30, "a  cat")]),
    ("a [dog:0.25] cat", [(2, "a  cat"), (10, "a dog cat")], [(7, "a  cat"), (30, "a dog cat")]),
    ("[a:b:0]", [(10, "b")], [(30, "b")]),
    ("[a:b:1]", [(1, "a"), (10, "b")], [(1, "a"), (30, "b")]),
    ("[a:b:40]", [(10, "a")], [(30, "a")]),
    ("[a:b: 5 ]", [(5, "a"), (10, "b")], [(5, "a"), (30, "b")]),
    ("[a:b:2.9]", [(2, "a"), (10, "b")], [(2, "a"), (30, "b")]),  # a step of 1 or more counts whole steps
    ("a [b:[c:d:2]:1] e", [(1, "a b e"), (2, "a c e"), (10, "a d e")], [(1, "a b e"), (2, "a c e"), (30, "a d e")]),
    ("[[a:b:2]:c:4]", [(2, "a"), (4, "b"), (10, "c")], [(2, "a"), (4, "b"), (30, "c")]),
    ("[(a:1.2):b:0.5]", [(5, "(a:1.2)"), (10, "b")], [(15, "(a:1.2)"), (30, "b")]),
    ("([a:b:0.5]:1.3)", [(5, "(a:1.3)"), (10, "(b:1.3)")], [(15, "(a:1.3)"), (30, "(b:1.3)")]),
    ("[a (b) c:d:0.5]", [(5, "a (b) c"), (10, "d")], [(15, "a (b) c"), (30, "d")]),
    ("[a [b] c:d:3]", [(3, "a [b] c"), (10, "d")], [(3, "a [b] c"), (30, "d")]),
    ("[a\\: b:c:3]", [(3, "a\\: b"), (10, "c")], [(3, "a\\: b"), (30, "c")]),
    ("x [a:b:2] y [c:d:4]", [(2, "x a y c"), (4, "x b y c"), (10, "x b y d")], [(2, "x a y c"), (4, "x b y c"), (30, "x b y d")]),
    ("[cat|dog] in a field", *cycle(["cat in a field", "dog in a field"])),
    ("[a|b|c]", *cycle(["a", "b", "c"])),
    ("[a|]", *cycle(["a", ""])),
    ("[(a:1.5)|[b]]", *cycle(["(a:1.5)", "[b]"])),
    ("[[a|b]:c:4]", [(1, "a"), (2, "b"), (3, "a"), (4, "b"), (10, "c")], [(1, "a"), (2, "b"), (3, "a"), (4, "b"), (30, "c")]),
    ("[a:[b|c]:8]", [(8, "a"), (9, "b"), (10, "c")], [(8, "a")] + [(s, "bc"[(s - 9) % 2]) for s in range(9, 31)]),
    ("[a|a]", [(10, "a")], [(30, "a")]),  # the same text each step is one segment
    ("a <lora:ink:0.7> [b:c:0.5]", [(5, "a  b"), (10, "a  c")], [(15, "a  b"), (30, "a  c")]),
    ("[a BREAK b:c:0.5]", [(5, "a BREAK b"), (10, "c")], [(15, "a BREAK b"), (30, "c")]),
    ("(unclosed [a:b:5]", [(5, "(unclosed a"), (10, "(unclosed b")], [(5, "(unclosed a"), (30, "(unclosed b")]),
]


@pytest.mark.parametrize("prompt, at10, at30", SCHEDULES, ids=[p for p, *_ in SCHEDULES])
def test_schedule_table(prompt, at10, at30):
    assert prompt_schedule(prompt, 10) == at10
    assert prompt_schedule(prompt, 30) == at30


def test_the_table_is_large_enough():
    assert len(ATTENTION) + len(SCHEDULES) >= 30 and len(SCHEDULES) >= 25


def test_parse_builds_the_tree():
    assert parse("a (b:1.5) [c]") == (Text("a ", "a "), Group((Text("b", "b"),), 1.5, "(", ":1.5)"), Text(" ", " "), Group((Text("c", "c"),), 1 / 1.1, "[", "]"))
    assert parse("[a:b:0.5]") == (Edit((Text("a", "a"),), (Text("b", "b"),), 0.5),)
    assert parse("[b:3]") == (Edit((), (Text("b", "b"),), 3.0),)
    assert parse("[a::3]") == (Edit((Text("a", "a"),), (), 3.0),)
    assert parse("[a|b]") == (Alternation(((Text("a", "a"),), (Text("b", "b"),))),)
    assert parse("x BREAK y") == (Text("x", "x"), Break(" BREAK "), Text("y", "y"))
    assert parse("<lora:ink:0.5>") == (Lora(LoraTag("ink", 0.5, 0.5), "<lora:ink:0.5>"),)
    assert parse("(a") == (Group((Text("a", "a"),), 1.1, "(", ""),)
    # Nesting of both: an alternation inside an edit inside a weighted group.
    [group] = parse("([[x|y]:z:3]:1.2)")
    assert isinstance(group, Group) and group.multiplier == 1.2
    [edit] = group.children
    assert isinstance(edit, Edit) and isinstance(edit.before[0], Alternation) and edit.when == 3.0


def test_the_schedule_keeps_runs_per_step():
    [first, second] = schedule(parse("a [(cat:1.2):dog:0.5]"), 10)
    assert first.runs == [[("a ", 1.0), ("cat", 1.2)]] and second.runs == [[("a dog", 1.0)]]


def test_lora_tags_anywhere_apply_to_the_whole_render():
    nodes = parse("<lora:a:1> [x <lora:b:0.5>:y:3] [p|<lora:c>]")
    assert [tag.name for tag in loras(nodes)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "prompt, message",
    [
        ("[a:b:0.5", "unclosed prompt edit"),
        ("a [cat|dog", "unclosed alternation"),
        ("[a:b:soon]", "not a step or fraction"),
        ("[a:b]", "not a step or fraction"),
        ("[a:b:]", "when is nothing"),
        ("[a:b:-2]", "not a step or fraction"),
        ("[a:b:nan]", "not a step or fraction"),
        ("[a:b:inf]", "not a step or fraction"),
        ("[a:(b)]", "when is nothing"),
        ("[a:b:c:0.5]", "has 4 parts"),
        ("[a|b:3]", "mixes : and |"),
        ("(x:nan)", "finite number"),
        ("(x:inf)", "finite number"),
        ("(x:-Infinity)", "finite number"),
        ("(x:1.2.3)", r"\(text:1.2\)"),
        ("(" * 100 + "deep", "nest more than 64"),
    ],
)
def test_bad_syntax_is_an_invalid_request_that_says_how_to_fix_it(prompt, message):
    with pytest.raises(InvalidRequest, match=message):
        prompt_schedule(prompt, 10)


def test_steps_must_be_a_whole_number():
    for steps in (0, -1, 2.5, True):
        with pytest.raises(InvalidRequest, match="whole number of steps"):
            prompt_schedule("a", steps)


def test_fuzzed_prompts_never_raise_anything_else():
    import random

    pieces = ["a", " ", "(", ")", "[", "]", ":", "|", "0.5", "3", "\\", "BREAK", "<lora:x:1>", "<lora:>", ":1.2)", "nan"]
    rng = random.Random(0)
    for _ in range(2000):
        prompt = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        try:
            for steps in (1, 10):
                for segment in schedule(parse(prompt), steps):
                    assert segment.runs and all(part for part in segment.runs)
        except InvalidRequest:
            pass


LORA_TABLE = [
    ("a cat <lora:ink>", "a cat ", [LoraTag("ink", 1.0, 1.0)]),
    ("a cat <lora:ink:0.8>", "a cat ", [LoraTag("ink", 0.8, 0.8)]),
    ("<lora:ink:0.5:1.2>a cat", "a cat", [LoraTag("ink", 0.5, 1.2)]),
    ("<lora:ink:te=0.3:unet=0.7>", "", [LoraTag("ink", 0.3, 0.7)]),
    ("<lora:styles/ink: 0.6 >", "", [LoraTag("styles/ink", 0.6, 0.6)]),
    ("<lyco:ink:0.9> x", " x", [LoraTag("ink", 0.9, 0.9)]),
    ("a <lora:a:1>, <lora:b:-0.5> b", "a ,  b", [LoraTag("a", 1.0, 1.0), LoraTag("b", -0.5, -0.5)]),
    ("<hypernet:x:1> and <not a tag>", "<hypernet:x:1> and <not a tag>", []),
    ("[a <lora:ink:0.5>:b:3]", "[a :b:3]", [LoraTag("ink", 0.5, 0.5)]),
]


@pytest.mark.parametrize("prompt, text, tags", LORA_TABLE)
def test_lora_tags_are_stripped_and_read(prompt, text, tags):
    assert extract_loras(prompt) == (text, tags)


@pytest.mark.parametrize(
    "prompt, message",
    [
        ("<lora:ink:heavy>", "not a number"),
        ("<lora:ink:nan>", "not a number"),
        ("<lora: :1>", "has no name"),
        ("<lora:ink:1:1:1>", "too many values"),
        ("<lora:ink:dyn=4>", "unknown LoRA option"),
    ],
)
def test_bad_lora_tags_are_clear_errors(prompt, message):
    with pytest.raises(InvalidRequest, match=message):
        extract_loras(prompt)
    with pytest.raises(InvalidRequest, match=message):
        parse(prompt)


def test_tags_then_attention_compose():
    text, tags = extract_loras("a (cat:1.3) <lora:ink:0.7> BREAK [dog]")
    assert tags == [LoraTag("ink", 0.7, 0.7)]
    assert attention_runs(text) == [[("a ", 1.0), ("cat", 1.3)], [("dog", 1 / 1.1)]]
