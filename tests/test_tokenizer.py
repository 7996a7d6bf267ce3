"""The offline CLIP tokenizer: a stock CLIPTokenizer, one token per corpus word."""

from __future__ import annotations

from helpers.tokenizer import build_clip_tokenizer, clip_vocab_and_merges

CORPUS = ["a handwritten three", "a handwritten thirteen", "three red threes", "zero one two"]


def test_every_corpus_word_is_one_token_and_decodes_back():
    tok = build_clip_tokenizer(CORPUS, model_max_length=8)
    for word in {w for text in CORPUS for w in text.split()}:
        ids = tok(word)["input_ids"]
        assert len(ids) == 3, tok.convert_ids_to_tokens(ids)  # BOS, the word, EOS
    ids = tok("a handwritten three")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "a handwritten three"


def test_padding_truncation_and_unknown_words():
    tok = build_clip_tokenizer(CORPUS, model_max_length=6)
    batch = tok(["A Handwritten Three!", "an elephant wearing a hat"], padding="max_length", truncation=True)
    assert all(len(ids) == 6 for ids in batch["input_ids"])
    # unseen words still tokenize (byte by byte) instead of collapsing to one unknown id
    assert len(set(tok("elephant")["input_ids"])) > 3


def test_vocabulary_is_deterministic():
    assert clip_vocab_and_merges(CORPUS) == clip_vocab_and_merges(list(reversed(CORPUS)))
