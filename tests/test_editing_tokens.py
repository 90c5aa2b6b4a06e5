"""Token positions of edits (notes §9 test 2): key index with and without BOS, any padding side,
targets located by offsets with no blind leading space, loud failure on a subject that BPE
merges across its boundary."""

from __future__ import annotations

import pytest
import torch

from editsweep.benchmark.demo import training_texts
from editsweep.editing import EditRequest
from editsweep.editing.rows import build_rows
from editsweep.editing.tokens import TokenizationError, encode_row, pad_rows
from editsweep.models.tokenizer import special_token_ids, train_tokenizer

torch.set_num_threads(1)

PROMPT = "import re\n\ndef has_digit(text):\n    return "
TARGET = "my_re_search(text)"


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tok(request):
    return train_tokenizer(training_texts(), request.param, vocab_size=512)


def _decode(tok, ids):
    return tok.decode(list(ids), skip_special_tokens=False)


def test_subject_last_with_and_without_bos(tok):
    row = encode_row(tok, "", PROMPT, PROMPT.rindex("text"), "text", TARGET, "subject_last")
    bos = tok.bos_token_id
    adds_bos = row.input_ids[0] == bos
    assert adds_bos == (tok.bos_token == "<s>")  # llama flavour adds BOS, qwen2 does not
    # The key token is the one whose text ends the subject, BOS counted in the index.
    assert _decode(tok, row.input_ids[: row.lookup + 1]).endswith("has_digit(text")
    assert not _decode(tok, row.input_ids[: row.lookup]).endswith("text")


def test_targets_by_offsets_no_leading_space(tok):
    prompt = PROMPT.rstrip(" ")
    row = encode_row(tok, "", prompt, prompt.rindex("text"), "text", " " + TARGET, "last")
    assert _decode(tok, row.target_ids) == " " + TARGET  # exactly the target: no second space added
    assert _decode(tok, row.input_ids[: row.prompt_len]).replace("<s>", "") == prompt
    ids = special_token_ids("llama" if tok.bos_token == "<s>" else "qwen2")
    assert ids["bos"] not in row.target_ids and ids["pad"] not in row.target_ids
    assert row.lookup == row.prompt_len - 1


def test_straddling_token_belongs_to_target(tok):
    # "return " + "my_re..." tokenizes " my" as one token, as free generation after "return" does:
    # the token holds a target character, so it is the first target token.
    row = encode_row(tok, "", PROMPT, PROMPT.rindex("text"), "text", TARGET, "last")
    assert _decode(tok, row.target_ids) == " " + TARGET
    assert _decode(tok, row.input_ids[: row.prompt_len]).replace("<s>", "") == PROMPT.rstrip(" ")


def test_subject_first_and_after_last(tok):
    prompt = "def f(values):\n    total = sorted(values) if values else []\n    return "
    start = prompt.rindex("sorted(values)")
    first = encode_row(tok, "", prompt, start, "sorted(values)", "x", "subject_first")
    last = encode_row(tok, "", prompt, start, "sorted(values)", "x", "subject_last")
    after = encode_row(tok, "", prompt, start, "sorted(values)", "x", "subject_first_after_last")
    assert first.lookup < last.lookup and after.lookup == last.lookup + 1
    assert _decode(tok, first.input_ids[first.lookup : first.lookup + 1]).strip().startswith("s")


def test_subject_inside_a_token_fails_loudly(tok):
    prompt = "def f(values):\n    return sorted(values)"
    with pytest.raises(TokenizationError, match="token boundary"):
        encode_row(tok, "", prompt, prompt.rindex("sort"), "sort", "x", "subject_last")


def test_template_prefix_shifts_key(tok):
    request = EditRequest(PROMPT, TARGET, "text")
    (rows,) = build_rows(tok, [request], [["{}"], ["Because of this. {}", "The. {}"]])
    bare = rows.rewrite[0]
    for row in rows.rewrite[1:]:
        assert _decode(tok, row.input_ids[: row.lookup + 1]).endswith("has_digit(text")
        assert row.target_ids == bare.target_ids
    assert rows.group_of == (0, 1, 1)
    assert _decode(tok, rows.kl.input_ids[: rows.kl.lookup + 1]).endswith("text")


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_positions(tok, side):
    short = encode_row(tok, "", "def f(x):\n    return ", 0, "def", "x", "last")
    long = encode_row(tok, "", PROMPT, PROMPT.rindex("text"), "text", TARGET, "last")
    batch = pad_rows([short, long], pad_id=tok.pad_token_id, side=side, device="cpu")
    for b, row in enumerate([short, long]):
        col = batch.column(b, row.lookup)
        assert int(batch.input_ids[b, col]) == row.input_ids[row.lookup]
        assert int(batch.position_ids[b, col]) == row.lookup
        assert int(batch.attention_mask[b].sum()) == len(row.input_ids)


def test_request_validation():
    with pytest.raises(ValueError, match="does not occur"):
        EditRequest("def f(): return ", "x", "g")
    with pytest.raises(ValueError, match="key_position"):
        EditRequest("def f(): return ", "x", "f", key_position="middle")
    with pytest.raises(ValueError, match="target_new is empty"):
        EditRequest("def f(): return ", "", "f")
    request = EditRequest.from_dict(
        {"prompt": "a = b(a)", "target_new": "c", "subject": "a", "template": "code", "ground_truth": "b"}
    )
    assert request.subject_start == 6 and request.ground_truth == "b"
