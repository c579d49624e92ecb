"""Several summary tokens at the start of the input (BERTXML's idea), shared by the models.

A single [CLS] state has to summarise a whole document for every label. BERTXML (Xun et al.,
KDD 2020) inserts n - 1 learned [CLS]-like embeddings right after the tokenizer's own [CLS], so
that the encoder produces n summary states instead of one. :class:`SummaryTokens` holds those
n - 1 embeddings and runs the encoder on the lengthened input; ``bertxml`` uses it for its
classifier, and LabelCoRank's first prediction (and the ``roberta`` row, which is that first
prediction alone) can use it too (the ``summary_tokens`` setting; 1 = the paper's h_cls).

The two ways the models put their own embeddings into the encoder's input are here:
:func:`encode_with_inserted` (after [CLS], read by the text and reading it: the summary tokens,
and LabelCoRank's label queries with ``label_attention: encoder``) and readers appended after the
text, which does not read them (``label_attention: encoder_readers``), in two halves:
:func:`encode_text_for_readers` encodes the text once and keeps its keys and values (or, with
``reader_keys: own``, :func:`encode_text_states` keeps each layer's input states and
:func:`project_text_for_readers` projects them with the readers' own weights), and
:func:`read_with_readers` runs the readers, chosen from what that pass predicts, against them.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn
from transformers import Cache, DynamicCache

from lcr.errors import LcrError

# Encoders whose position ids start after the padding index (RoBERTa: positions 2..513 of 514).
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text"}


def max_tokens(encoder_config) -> int | None:
    """The longest input an encoder's position table allows (None when it has none)."""
    positions = getattr(encoder_config, "max_position_embeddings", None)
    if positions is None:
        return None
    if getattr(encoder_config, "model_type", "") in _OFFSET_POSITIONS:
        positions -= (getattr(encoder_config, "pad_token_id", 1) or 0) + 1
    return positions


class SummaryTokens(nn.Module):
    """n - 1 learned summary embeddings inserted after the first token, and the encoder run.

    Args:
        count: n, the summary tokens in all (the tokenizer's [CLS] is the first); 1 inserts
            nothing and runs the encoder as it is.
        encoder: the Hugging Face encoder they feed (only read for its sizes here).
    """

    def __init__(self, count: int, encoder: nn.Module):
        super().__init__()
        self.count = count
        self.limit = max_tokens(encoder.config)
        self.extra = nn.Parameter(torch.randn(count - 1, encoder.config.hidden_size) * 0.02)  # (n - 1, delta)

    def init_from(self, encoder: nn.Module, cls_token_id: int) -> None:
        """Start the extra tokens from the [CLS] token's pretrained embedding (plus a little
        noise, so that they are not n copies of one token)."""
        with torch.no_grad():
            cls = encoder.get_input_embeddings().weight[cls_token_id]  # (delta,)
            noise = torch.randn_like(self.extra) * 0.02  # (n - 1, delta)
            self.extra.copy_(cls[None] + noise)

    def forward(self, encoder: nn.Module, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode ``[CLS], the n - 1 summary tokens, the rest of the text``.

        Text tokens that would overflow the encoder's position table once the n - 1 tokens are
        inserted are cut from the end.

        Args:
            encoder: the Hugging Face encoder.
            input_ids: token ids (B x T), the tokenizer's [CLS] first.
            attention_mask: 1 on real tokens, 0 on padding (B x T).

        Returns:
            ``(hidden, mask)``: the encoder's states (B x T' x delta, the n summary states
            first, T' = T + n - 1 or the position limit) and their mask (B x T').
        """
        n = self.count
        if n == 1:
            return encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state, attention_mask
        batch = input_ids.size(0)
        extra = self.extra[None].expand(batch, -1, -1)  # (B, n - 1, delta)
        ones = attention_mask.new_ones(batch, n - 1)  # (B, n - 1) the summary tokens are real
        return encode_with_inserted(encoder, input_ids, attention_mask, extra, ones, limit=self.limit)


def encode_with_inserted(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         inserted: torch.Tensor, inserted_mask: torch.Tensor, *, limit: int | None,
                         segment: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode ``[CLS], m inserted embeddings, the rest of the text``.

    Text tokens that would overflow the encoder's position table once the m embeddings are
    inserted are cut from the end.

    Args:
        encoder: the Hugging Face encoder.
        input_ids: token ids (B x T), the tokenizer's [CLS] first.
        attention_mask: 1 on real tokens, 0 on padding (B x T).
        inserted: the embeddings to insert (B x m x delta), in the word-embedding space: the
            encoder adds its position (and token type) embeddings to them itself.
        inserted_mask: 1 (True) where an inserted embedding is real, 0 where no token may read
            it (B x m).
        limit: the longest input the position table allows (:func:`max_tokens`); None = no limit.
        segment: the token type of the inserted positions (0 = the text's own); ignored by
            encoders with a single token type (RoBERTa).

    Returns:
        ``(hidden, mask)``: the encoder's states (B x T' x delta, the inserted ones at 1..m,
        T' = T + m or the position limit) and their mask (B x T').
    """
    m = inserted.size(1)
    if limit is not None and input_ids.size(1) + m > limit:
        keep = limit - m  # room for the inserted embeddings: cut the text's end
        input_ids, attention_mask = input_ids[:, :keep], attention_mask[:, :keep]
    words = encoder.get_input_embeddings()(input_ids)  # (B, T, delta) word embeddings only
    embeds = torch.cat([words[:, :1], inserted.to(words.dtype), words[:, 1:]], dim=1)  # (B, T + m, delta)
    inserted_mask = inserted_mask.to(attention_mask.dtype)  # (B, m)
    mask = torch.cat([attention_mask[:, :1], inserted_mask, attention_mask[:, 1:]], dim=1)  # (B, T + m)
    kwargs = {}
    if segment and getattr(encoder.config, "type_vocab_size", 1) > segment:
        types = torch.zeros_like(mask)  # (B, T + m)
        types[:, 1:1 + m] = segment  # the inserted positions: a segment of their own
        kwargs["token_type_ids"] = types
    # The encoder adds its position (and token type) embeddings to inputs_embeds itself.
    hidden = encoder(inputs_embeds=embeds, attention_mask=mask, **kwargs).last_hidden_state  # (B, T + m, delta)
    return hidden, mask


def _cache_argument(encoder: nn.Module) -> str:
    """The name under which this encoder's forward takes a key/value cache: ``cache`` (recent
    transformers) or ``past_key_values`` (transformers 5.0 and the releases before the rename).

    Raises:
        LcrError: a forward that takes neither (one with ``**kwargs`` swallows the cache instead;
            :func:`encode_text_for_readers` finds that out from the cache it gets back empty).
    """
    parameters = inspect.signature(encoder.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in parameters:
            return name
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return "cache"
    raise _keeps_no_cache(encoder)


def _keeps_no_cache(encoder: nn.Module) -> LcrError:
    kind = getattr(encoder.config, "model_type", None) or type(encoder).__name__
    return LcrError(f"label_attention 'encoder_readers' needs an encoder that keeps its keys and values "
                    f"(a cache); {kind!r} kept none")


def encode_text_for_readers(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                            limit: int | None, room: int) -> tuple[torch.Tensor, torch.Tensor, Cache]:
    """Encode the text and keep each layer's keys and values, for readers to read later.

    The first half of an ``encoder_readers`` pass: a plain pass over the text (its states are the
    text's states whatever readers come later, since the text never reads them), which also keeps
    every layer's keys and values in a cache; :func:`read_with_readers` then runs only the readers
    through the layers against them. Text past ``limit - room`` is cut from the end first, so that
    ``room`` readers fit in the position table after it.

    Args:
        encoder: the Hugging Face encoder (one that fills a key/value cache: BERT, RoBERTa...).
        input_ids: token ids (B x T).
        attention_mask: 1 on real tokens, 0 on padding (B x T).
        limit: the longest input the position table allows (:func:`max_tokens`); None = no limit.
        room: how many readers will follow the text.

    Returns:
        ``(hidden, mask, cache)``: the text's states (B x T' x delta, T' = T or less when cut),
        their mask (B x T') and the cache of every layer's keys and values.

    Raises:
        LcrError: an encoder that keeps no keys and values.
    """
    input_ids, attention_mask = _room_for_readers(input_ids, attention_mask, limit, room)
    cache = DynamicCache(config=encoder.config)
    name = _cache_argument(encoder)
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask, **{name: cache}).last_hidden_state  # (B, T, delta)
    if cache.get_seq_length() != input_ids.size(1):
        raise _keeps_no_cache(encoder)
    return hidden, attention_mask, cache


def encode_text_states(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                       limit: int | None, room: int) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """Encode the text and keep what each layer read, for readers with keys and values of their own.

    The first half of an ``encoder_readers`` pass with ``reader_keys: own``: like
    :func:`encode_text_for_readers`, but instead of the encoder's keys and values it keeps each
    layer's input states, which :func:`project_text_for_readers` projects with the readers' weights.

    Args:
        encoder: the Hugging Face encoder.
        input_ids: token ids (B x T).
        attention_mask: 1 on real tokens, 0 on padding (B x T).
        limit: the longest input the position table allows (:func:`max_tokens`); None = no limit.
        room: how many readers will follow the text.

    Returns:
        ``(hidden, mask, layer_inputs)``: the text's states (B x T' x delta), their mask (B x T')
        and, per layer, the states it read (L tensors of B x T' x delta: the embeddings, then each
        layer's output but the last).
    """
    input_ids, attention_mask = _room_for_readers(input_ids, attention_mask, limit, room)
    out = encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    return out.last_hidden_state, attention_mask, tuple(out.hidden_states[:-1])  # (B, T, delta), (B, T), L x (B, T, delta)


def project_text_for_readers(readers_encoder: nn.Module, layer_inputs: tuple[torch.Tensor, ...]) -> Cache:
    """The text's keys and values as the readers' own layers project them (``reader_keys: own``).

    Each reader layer projects the text's input states of the same layer with its own key and
    value weights, so that what a reader finds in the text is its own choice, not the keys and
    values the encoder learnt for the text's self-attention (and the first prediction); the text's
    states themselves are still the encoder's, computed once.

    Args:
        readers_encoder: the readers' copy of the encoder (``reader_weights: own``), BERT-like: its
            layers at ``encoder.layer`` with ``attention.self.key`` / ``.value`` projections.
        layer_inputs: per layer, the text's input states (L tensors of B x T x delta), as
            :func:`encode_text_states` returned them.

    Returns:
        A cache of every layer's keys and values, for :func:`read_with_readers`.

    Raises:
        LcrError: an encoder whose layers are not laid out like BERT's.
    """
    layers = getattr(getattr(readers_encoder, "encoder", None), "layer", None)
    attentions = [getattr(getattr(layer, "attention", None), "self", None) for layer in layers or []]
    if not attentions or len(attentions) != len(layer_inputs) or not all(
            hasattr(a, "key") and hasattr(a, "value") and hasattr(a, "attention_head_size") for a in attentions):
        kind = getattr(readers_encoder.config, "model_type", None) or type(readers_encoder).__name__
        raise LcrError(f"reader_keys 'own' needs a BERT-like encoder (layers with their own key and value "
                       f"projections at encoder.layer[i].attention.self); {kind!r} is laid out otherwise")
    cache = DynamicCache(config=readers_encoder.config)
    for index, (attention, states) in enumerate(zip(attentions, layer_inputs)):
        shape = (*states.shape[:-1], -1, attention.attention_head_size)  # (B, T, heads, head size)
        keys = attention.key(states).view(shape).transpose(1, 2)  # (B, heads, T, head size)
        values = attention.value(states).view(shape).transpose(1, 2)  # (B, heads, T, head size)
        cache.update(keys, values, index)
    return cache


def _room_for_readers(input_ids: torch.Tensor, attention_mask: torch.Tensor, limit: int | None,
                      room: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut the text's end so that ``room`` readers fit in the position table after it."""
    if limit is not None and input_ids.size(1) + room > limit:
        return input_ids[:, :limit - room], attention_mask[:, :limit - room]
    return input_ids, attention_mask


def read_with_readers(encoder: nn.Module, cache: Cache, text_mask: torch.Tensor, readers: torch.Tensor,
                      readers_mask: torch.Tensor, *, segment: int = 0) -> torch.Tensor:
    """Run m reader embeddings through the encoder after a text encoded by
    :func:`encode_text_for_readers`: at every layer each reader reads the text's keys and values
    of that layer and the other readers; nothing is recomputed for the text.

    Args:
        encoder: the encoder that filled ``cache`` (attention ``sdpa`` or ``eager``).
        cache: the text's keys and values (:func:`encode_text_for_readers` or
            :func:`project_text_for_readers`; used up: the readers' are appended to it).
        text_mask: the text's mask (B x T), as :func:`encode_text_for_readers` returned it.
        readers: the embeddings to append (B x m x delta), in the word-embedding space.
        readers_mask: True where a reader is real (B x m); a masked reader is read by nobody.
        segment: the readers' token type (ignored by encoders with a single token type).

    Returns:
        The readers' states (B x m x delta).

    Raises:
        LcrError: an attention implementation that takes no custom mask (flash attention).
    """
    batch, t, m = readers.size(0), text_mask.size(1), readers.size(1)
    keys = torch.cat([text_mask.bool(), readers_mask.bool()], dim=1)  # (B, T + m) real keys
    allowed = keys[:, None, None, :].expand(batch, 1, m, t + m)  # (B, 1, m queries, T + m keys)
    implementation = getattr(encoder.config, "_attn_implementation", None) or "eager"
    if implementation == "sdpa":
        mask = allowed  # True = may attend
    elif implementation == "eager":
        dtype = encoder.get_input_embeddings().weight.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype, device=readers.device)
        mask = mask.masked_fill(~allowed, torch.finfo(dtype).min)  # (B, 1, m, T + m) additive
    else:
        raise LcrError(f"label_attention 'encoder_readers' needs the encoder's attention 'sdpa' or 'eager', "
                       f"not {implementation!r} (it takes a custom attention mask)")
    # Positions count on from each text's own last token (after the padding offset of RoBERTa-like
    # tables), not from the batch's padded length: a document reads the same with any batch-mates.
    offset = (getattr(encoder.config, "pad_token_id", 1) or 0) + 1 \
        if getattr(encoder.config, "model_type", "") in _OFFSET_POSITIONS else 0
    lengths = text_mask.long().sum(dim=1, keepdim=True)  # (B, 1) real text tokens (right padding)
    positions = offset + lengths + torch.arange(m, device=readers.device)  # (B, m)
    kwargs = {}
    if segment and getattr(encoder.config, "type_vocab_size", 1) > segment:
        kwargs["token_type_ids"] = torch.full((batch, m), segment, dtype=torch.long, device=readers.device)
    kwargs[_cache_argument(encoder)] = cache
    out = encoder(inputs_embeds=readers.to(encoder.get_input_embeddings().weight.dtype), attention_mask=mask,
                  position_ids=positions, **kwargs)
    return out.last_hidden_state  # (B, m, delta)
