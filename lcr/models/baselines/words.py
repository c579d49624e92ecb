"""The word-level tokenizer of the word-level baselines, built from the training split.

XML-CNN, AttentionXML, MeSHProbeNet, the Transformer and the Star-Transformer read words.
Their papers start from pretrained word vectors (word2vec or GloVe); nothing may be downloaded
here, so the vocabulary is counted on the training documents and the embeddings are initialised
at random and trained with the model (see :func:`lcr.models.baselines.common.word_embedding`).

The vocabulary becomes a ``tokenizers`` WordLevel model wrapped as a ``transformers`` fast
tokenizer, so the rest of the pipeline (``encode_split``, the ``best_model/tokenizer`` folder,
``AutoTokenizer.from_pretrained`` in the predictor and in serving) uses it like any encoder's.
"""

from __future__ import annotations

from typing import Iterable

from lcr.errors import LcrError

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIALS = [PAD, UNK, CLS]  # ids 0, 1, 2


def build_word_tokenizer(texts: Iterable[str], *, vocab_size: int = 50000, min_freq: int = 2,
                         max_length: int = 512):
    """Count the words of ``texts`` and return a fast word-level tokenizer.

    Text is lower-cased and normalised as BERT's uncased tokenizer does (accents stripped,
    control characters removed), then split into runs of word characters and runs of
    punctuation (``tokenizers.pre_tokenizers.Whitespace``). The vocabulary keeps the
    ``vocab_size - 3`` most frequent words seen at least ``min_freq`` times (ties in frequency
    broken by the word, so the same texts always give the same ids); other words become
    [UNK]. Every encoded text starts with [CLS] (the Transformer can pool it; the other models
    read it as one more word).

    Args:
        texts: the training documents: strings, or lists of strings (chunks, as
            :func:`lcr.datasets.batches.iter_texts` streams them).
        vocab_size: the largest vocabulary, the 3 special tokens included.
        min_freq: the fewest occurrences a word needs to get its own id.
        max_length: recorded as the tokenizer's ``model_max_length``.

    Returns:
        A ``transformers`` fast tokenizer with ``pad_token_id`` 0, ``unk_token_id`` 1 and
        ``cls_token_id`` 2.

    Raises:
        LcrError: bad sizes, or no word reaches ``min_freq``.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < len(SPECIALS) + 1:
        raise LcrError(f"word_vocab_size must be at least {len(SPECIALS) + 1}, got {vocab_size}")
    if min_freq < 1:
        raise LcrError(f"word_min_freq must be at least 1, got {min_freq}")
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                      strip_accents=True, lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_freq,
                                        special_tokens=SPECIALS, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    if tokenizer.get_vocab_size() <= len(SPECIALS):
        raise LcrError(f"no word of the training texts occurs at least word_min_freq = {min_freq} times")
    cls_id = tokenizer.token_to_id(CLS)
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{CLS} $A", pair=f"{CLS} $A $B",
                                                             special_tokens=[(CLS, cls_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, unk_token=UNK, cls_token=CLS,
                                   model_max_length=max_length)
