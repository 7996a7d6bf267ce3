"""The offline CLIP tokenizer: a stock CLIPTokenizer, one token per corpus word."""

from __future__ import annotations

from helpers.tokenizer import build_clip_tokenizer, clip_vocab_and_merges

# Words that share a start ("rain" / "rainbow", "cat" / "cats") must still be one token each.
CORPUS = ["a big red apple", "a rain cloud", "a rainbow on a blue background", "two cats and a cat"]


def test_every_corpus_word_is_one_token_and_decodes_back():
    tok = build_clip_tokenizer(CORPUS, model_max_length=8)
    for word in {w for text in CORPUS for w in text.split()}:
        ids = tok(word)["input_ids"]
        assert len(ids) == 3, tok.convert_ids_to_tokens(ids)  # BOS, the word, EOS
    ids = tok("a big red apple")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "a big red apple"


def test_padding_truncation_and_unknown_words():
    tok = build_clip_tokenizer(CORPUS, model_max_length=6)
    batch = tok(["A Big Red Apple!", "an elephant wearing a hat"], padding="max_length", truncation=True)
    assert all(len(ids) == 6 for ids in batch["input_ids"])
    # unseen words still tokenize (byte by byte) instead of collapsing to one unknown id
    assert len(set(tok("elephant")["input_ids"])) > 3


def test_vocabulary_is_deterministic():
    assert clip_vocab_and_merges(CORPUS) == clip_vocab_and_merges(list(reversed(CORPUS)))


def test_the_scene_captions_use_one_token_per_word():
    from helpers.teaching.scenes import all_captions

    captions = all_captions()
    tok = build_clip_tokenizer(captions, model_max_length=16)
    longest = max(captions, key=lambda c: len(c.split()))
    ids = tok(longest)["input_ids"]
    assert len(ids) == len(longest.split()) + 2 and tok.decode(ids, skip_special_tokens=True) == longest
