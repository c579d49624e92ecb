"""A tiny, randomly initialised RoBERTa and a byte-level BPE tokenizer, built offline for tests.

Saved as an ordinary Hugging Face folder, so ``lcr.models.encoder.load_encoder(folder)``,
``AutoTokenizer.from_pretrained`` and ``AutoModel.from_pretrained`` load it like any checkpoint.
"""

from __future__ import annotations

from pathlib import Path

# Enough varied English for a small BPE vocabulary; every byte is in the byte-level alphabet
# anyway, so any text encodes.
_CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "wheat corn harvest tonnes grain farmers export prices rose",
    "crude barrel opec refinery oil prices fell sharply on monday",
    "bank interest rate dollar currency money market yields",
    "port vessel tanker shipping cargo strike workers union",
    "neural networks learn representations of text and images",
    "multi label classification assigns several labels to each document",
    "the company said its quarterly profit was higher than expected",
    "a report on the economy of the region and its trade partners",
]
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids 0-4


def make_tiny_encoder(directory, *, hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2,
                      intermediate_size: int = 64, max_length: int = 128, vocab_size: int = 400,
                      seed: int = 0) -> str:
    """Write a tiny RoBERTa encoder and its tokenizer into ``directory``.

    Args:
        directory: the folder to create (or overwrite).
        hidden_size, num_layers, num_heads, intermediate_size: the encoder's size.
        max_length: the longest input in tokens (RoBERTa needs 2 more position embeddings).
        vocab_size: the BPE vocabulary size (the corpus may give fewer tokens).
        seed: seeds the weights, so the same call writes the same model.

    Returns:
        The folder, as a string.
    """
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_CORPUS * 4, vocab_size=vocab_size, min_frequency=1,
                            special_tokens=SPECIAL_TOKENS, show_progress=False)
    # <s> text </s>, like roberta-base.
    bpe.post_processor = RobertaProcessing(("</s>", bpe.token_to_id("</s>")), ("<s>", bpe.token_to_id("<s>")))
    # transformers 5 ignores vocab_file/merges_file here: hand over the trained tokenizer object
    # and save tokenizer.json, which from_pretrained(directory) reads back.
    tokenizer = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                     sep_token="</s>", cls_token="<s>", unk_token="<unk>",
                                     pad_token="<pad>", mask_token="<mask>", model_max_length=max_length)
    tokenizer.save_pretrained(directory)

    config = RobertaConfig(vocab_size=bpe.get_vocab_size(), hidden_size=hidden_size,
                           num_hidden_layers=num_layers, num_attention_heads=num_heads,
                           intermediate_size=intermediate_size, max_position_embeddings=max_length + 2,
                           pad_token_id=SPECIAL_TOKENS.index("<pad>"), bos_token_id=0, eos_token_id=2,
                           type_vocab_size=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RobertaModel(config)
    model.save_pretrained(directory)
    return str(directory)
