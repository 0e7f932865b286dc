"""A1111's prompt syntax: the attention table from its docs and doctests, BREAK, and LoRA tags."""

import pytest

from imagegen import InvalidRequest
from imagegen.prompt_syntax import BREAK, LoraTag, extract_loras, is_break, parse_attention

# A1111's wiki ("Attention/emphasis") and `parse_prompt_attention`'s doctests, results verbatim.
A1111_TABLE = [
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
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a: colon", [("a: colon", 1.0)]),
    ("(a:b)", [("a:b", 1.1)]),
    ("", [("", 1.0)]),
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


@pytest.mark.parametrize("prompt, expected", A1111_TABLE, ids=[p or "<empty>" for p, _ in A1111_TABLE])
def test_a1111_attention_table(prompt, expected):
    assert parse_attention(prompt) == expected


def test_weights_are_a1111s_exact_floats():
    # ((x)) is 1.1 * 1.1, not a rounded 1.21: the same bits as A1111 give the same embeddings.
    [(_, weight)] = parse_attention("((x))")
    assert weight == 1.2100000000000002


def test_break_splits_and_is_never_weighted():
    assert parse_attention("a cat BREAK a dog") == [("a cat", 1.0), BREAK, ("a dog", 1.0)]
    assert parse_attention("(a cat BREAK a dog)") == [("a cat", 1.1), BREAK, ("a dog", 1.1)]
    runs = parse_attention("a BREAK BREAK b")
    assert [is_break(r) for r in runs] == [False, True, False, True, False]
    # Only the whole word: BREAKFAST is text.
    assert parse_attention("BREAKFAST") == [("BREAKFAST", 1.0)]


def test_a_weight_that_is_not_a_number_says_how_to_write_one():
    with pytest.raises(InvalidRequest, match=r"\(text:1.2\)"):
        parse_attention("(x:1.2.3)")


LORA_TABLE = [
    ("a cat <lora:ink>", "a cat ", [LoraTag("ink", 1.0, 1.0)]),
    ("a cat <lora:ink:0.8>", "a cat ", [LoraTag("ink", 0.8, 0.8)]),
    ("<lora:ink:0.5:1.2>a cat", "a cat", [LoraTag("ink", 0.5, 1.2)]),
    ("<lora:ink:te=0.3:unet=0.7>", "", [LoraTag("ink", 0.3, 0.7)]),
    ("<lora:styles/ink: 0.6 >", "", [LoraTag("styles/ink", 0.6, 0.6)]),
    ("<lyco:ink:0.9> x", " x", [LoraTag("ink", 0.9, 0.9)]),
    ("a <lora:a:1>, <lora:b:-0.5> b", "a ,  b", [LoraTag("a", 1.0, 1.0), LoraTag("b", -0.5, -0.5)]),
    ("<hypernet:x:1> and <not a tag>", "<hypernet:x:1> and <not a tag>", []),
]


@pytest.mark.parametrize("prompt, text, tags", LORA_TABLE)
def test_lora_tags_are_stripped_and_read(prompt, text, tags):
    assert extract_loras(prompt) == (text, tags)


def test_lora_tag_keeps_both_weights():
    [tag] = extract_loras("<lora:x:0.5:0.25>")[1]
    assert (tag.te_weight, tag.unet_weight) == (0.5, 0.25)


@pytest.mark.parametrize(
    "prompt, message",
    [
        ("<lora:ink:heavy>", "not a number"),
        ("<lora: :1>", "has no name"),
        ("<lora:ink:1:1:1>", "too many values"),
        ("<lora:ink:dyn=4>", "unknown LoRA option"),
    ],
)
def test_bad_lora_tags_are_clear_errors(prompt, message):
    with pytest.raises(InvalidRequest, match=message):
        extract_loras(prompt)


def test_tags_then_attention_compose():
    text, tags = extract_loras("a (cat:1.3) <lora:ink:0.7> BREAK [dog]")
    assert tags == [LoraTag("ink", 0.7, 0.7)]
    # As in A1111, the spaces around BREAK leave empty runs, which tokenize to nothing.
    assert [run for run in parse_attention(text) if run[0]] == [("a ", 1.0), ("cat", 1.3), BREAK, ("dog", 1 / 1.1)]
