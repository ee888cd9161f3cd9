"""The embedded default generator: a question decoder warm-started from multilingual-e5-small.

No pretrained multilingual seq2seq model can be had offline, so the generator is built after
Rothe et al. (2020): the e5 encoder (frozen; its states for a passage are computed once and
cached) and a shallow decoder whose self-attention and feed-forward blocks are copied from e5's
top layers, with cross-attention initialised from the same layers' attention weights. Choices,
each for the CPU budget:

- a language start token instead of the language name in the prompt: the encoder reads
  ``passage: {title} {passage}`` once and serves every target language (the paper's prompt
  would cost one encoder pass per language);
- a restricted output vocabulary: the e5 pieces that occur in the training questions or in the
  passages (about 10% of the 250k), embeddings tied to the input and initialised from e5;
- a copy gate: a learned scalar per decoding step added to the logits of the pieces of the
  passage being read, so the decoder can carry names and numbers over (a pointer mechanism
  reduced to one gate; it is what ties the questions to the passage in front of it);
- or, with ``copy_pointer``, a pointer-generator (See et al., 2017): a single-head attention over
  the passage's positions chooses *which* piece to copy, and a learned switch mixes that copy
  distribution with the vocabulary's, so a question can carry the passage's rare names over
  (the gate raises every passage piece alike);
- optionally (``restrict_vocabulary``), a per-language vocabulary while sampling: a language's
  questions draw pieces only from those its training questions use (plus what the copy mechanism
  takes from the passage). A small decoder over one multilingual vocabulary mixes languages
  (Vietnamese words in a Chinese question: the "accidental translation" of Xue et al., 2021);
  the restriction removes that without touching the weights;
- optionally (``script_budget``), a question keeps to its language's script: after its first piece,
  a piece with letters of another script may follow only while the question has more letters in
  its own script than in others. Copying carries a name over in Latin letters, and a weak decoder
  writing Chinese or Arabic tends to go on copying fragments of the English passage; the budget
  lets the name through and stops the fragments.

Every sample has at least one piece: EOS cannot come first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from xqg.data.schema import Passage
from xqg.generation.prompts import Triple
from xqg.languages import language_name, normalise_code, script_letter_counts, script_of
from xqg.models.device import to_device
from xqg.models.encoder import Encoder, EncoderSpec

PAD, EOS, UNK = 0, 1, 2  # reduced-vocabulary indices of the specials
CONFIG_FILE = "xqg_generator.json"
WEIGHTS_FILE = "decoder.pt"


@dataclass
class GeneratorConfig:
    """What a saved e5 generator needs to be rebuilt."""

    encoder_path: str
    languages: list[str]
    kept_pieces: list[int]  # full-vocabulary ids of the reduced vocabulary (after specials and languages)
    n_layers: int = 2
    max_passage_len: int = 128
    max_question_len: int = 40
    copy_gate: bool = True
    copy_pointer: bool = False  # a pointer-generator in place of the gate (the model emits log-probabilities)
    dropout: float = 0.0  # on embeddings and each sub-layer's output while training (BERT's places)
    # sampling in a language draws vocabulary pieces only from these full-vocabulary ids (the
    # pieces of its training questions; copying is not restricted); a language absent: no limit
    language_pieces: dict[str, list[int]] = field(default_factory=dict)
    # sampling: a piece with letters of another script may follow only while the question has more
    # letters in its language's script than in others (the first piece is free)
    script_budget: bool = False


class DecoderLayer(nn.Module):
    """Post-LN transformer decoder layer with BERT's parameter layout (self, cross, FFN)."""

    def __init__(self, hidden: int, heads: int, ff: int, eps: float, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.drop = nn.Dropout(dropout)
        self.q, self.k, self.v, self.o = (nn.Linear(hidden, hidden) for _ in range(4))
        self.cq, self.ck, self.cv, self.co = (nn.Linear(hidden, hidden) for _ in range(4))
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(hidden, eps=eps) for _ in range(3))
        self.fi, self.fo = nn.Linear(hidden, ff), nn.Linear(ff, hidden)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        return x.view(b, t, self.heads, h // self.heads).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, d = x.shape
        return x.transpose(1, 2).reshape(b, t, self.heads * d)

    def memory(self, mem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values of the encoder states (computed once per sequence)."""
        # contiguous once here, so that every decoding step's product runs without a copy
        return self._split(self.ck(mem)).contiguous(), self._split(self.cv(mem)).contiguous()

    def forward(self, x, mem_kv, mem_bias, cache=None):
        """`cache` (k, v) of earlier positions turns on incremental decoding; returns (x, cache)."""
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None and x.shape[1] > 1)
        x = self.ln1(x + self.drop(self.o(self._merge(att))))
        cq = self._split(self.cq(x))
        if x.shape[1] == 1:  # one decoding position: a plain product beats the fused kernel on CPU
            w = (cq @ mem_kv[0].transpose(-1, -2)) * cq.shape[-1] ** -0.5 + mem_bias
            c = w.softmax(-1) @ mem_kv[1]
        else:
            c = F.scaled_dot_product_attention(cq, *mem_kv, attn_mask=mem_bias)
        x = self.ln2(x + self.drop(self.co(self._merge(c))))
        x = self.ln3(x + self.drop(self.fo(F.gelu(self.fi(x)))))
        return x, (k, v)

    def warm_start(self, bert_layer: nn.Module) -> None:
        """Copy a BertLayer's weights; cross-attention starts from its self-attention."""
        att, out = bert_layer.attention, bert_layer.output
        pairs = [
            (self.q, att.self.query),
            (self.k, att.self.key),
            (self.v, att.self.value),
            (self.o, att.output.dense),
            (self.cq, att.self.query),
            (self.ck, att.self.key),
            (self.cv, att.self.value),
            (self.co, att.output.dense),
            (self.ln1, att.output.LayerNorm),
            (self.ln2, att.output.LayerNorm),
            (self.fi, bert_layer.intermediate.dense),
            (self.fo, out.dense),
            (self.ln3, out.LayerNorm),
        ]
        with torch.no_grad():
            for mine, theirs in pairs:
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)


def stack_copy_inputs(items: Sequence[torch.Tensor], pointer: bool) -> torch.Tensor:
    """One batch of `E5QuestionGenerator.copy_inputs` rows: the pointer's piece ids padded with
    PAD ([B, L]), or the gate's masks stacked ([B, V'])."""
    if pointer:
        return torch.nn.utils.rnn.pad_sequence(list(items), batch_first=True, padding_value=PAD)
    return torch.stack(list(items))


class E5QuestionGenerator(nn.Module):
    """Frozen e5 encoder + shallow warm-started decoder over a restricted vocabulary."""

    repetition_penalty = 1.3  # sampling: divide positive (multiply negative) logits of written pieces

    def __init__(self, encoder: Encoder, config: GeneratorConfig, warm_start: bool = True):
        super().__init__()
        self.config = config
        # the scoring benchmark's baseline: every piece scored, then masked (`sampling_columns`)
        self.score_every_piece = False
        self._state_memo: tuple[tuple[str, ...], tuple] | None = None
        self._letters_memo: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self.encoder = encoder  # shared with retrieval; frozen here
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        bert = encoder.model
        c = bert.config
        self.languages = [normalise_code(lang) for lang in config.languages]
        n_special = 3 + len(self.languages)
        full = torch.tensor(config.kept_pieces, dtype=torch.long)
        self.register_buffer("full_of_reduced", torch.cat([torch.full((n_special,), -1), full]), False)
        reduced = torch.full((c.vocab_size,), UNK, dtype=torch.long)
        reduced[full] = torch.arange(n_special, n_special + len(full))
        self.register_buffer("reduced_of_full", reduced, False)
        self.vocab_size = n_special + len(full)
        self.embed = nn.Embedding(self.vocab_size, c.hidden_size)
        self.pos = nn.Embedding(config.max_question_len + 2, c.hidden_size)
        self.emb_ln = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.emb_drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            DecoderLayer(
                c.hidden_size, c.num_attention_heads, c.intermediate_size, c.layer_norm_eps, config.dropout
            )
            for _ in range(config.n_layers)
        )
        self.out_bias = nn.Parameter(torch.zeros(self.vocab_size))
        self.copy = nn.Linear(c.hidden_size, 1)  # the gate's bonus, or the pointer's switch logit
        nn.init.zeros_(self.copy.weight)
        nn.init.zeros_(self.copy.bias)
        if config.copy_pointer:  # one attention head over the passage positions: what to copy
            self.ptr_q = nn.Linear(c.hidden_size, c.hidden_size)
            self.ptr_k = nn.Linear(c.hidden_size, c.hidden_size)
        if warm_start:
            self._warm_start()

    def _warm_start(self) -> None:
        bert, tok = self.encoder.model, self.encoder.tokenizer
        words = bert.embeddings.word_embeddings.weight
        with torch.no_grad():
            specials = [tok.pad_token_id, tok.eos_token_id, tok.unk_token_id]
            self.embed.weight[:3] = words[specials]
            for i, lang in enumerate(self.languages):  # start token: the language's name
                ids = tok(language_name(lang), add_special_tokens=False)["input_ids"]
                self.embed.weight[3 + i] = words[ids].mean(0)
            self.embed.weight[3 + len(self.languages) :] = words[
                self.full_of_reduced[3 + len(self.languages) :]
            ]
            self.pos.weight.copy_(bert.embeddings.position_embeddings.weight[: self.pos.num_embeddings])
            self.emb_ln.load_state_dict(bert.embeddings.LayerNorm.state_dict())
            top = bert.encoder.layer[-len(self.layers) :]
            for mine, theirs in zip(self.layers, top):
                mine.warm_start(theirs)
            if self.config.copy_pointer:  # the pointer starts as the top layer's cross-attention
                self.ptr_q.load_state_dict(self.layers[-1].cq.state_dict())
                self.ptr_k.load_state_dict(self.layers[-1].ck.state_dict())

    # -- encoding --------------------------------------------------------------------------
    @torch.no_grad()
    def encode_passages(self, passages: Sequence[Passage]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states [B, L, H] and attention masks of ``passage: {title} {text}``."""
        texts = [f"{p.title} {p.text}" for p in passages]
        batch = to_device(
            self.encoder.tokenize(texts, "passage", self.config.max_passage_len), self.out_bias.device
        )
        self.encoder.model.eval()
        states = self.encoder.model(**batch).last_hidden_state
        return states, batch["attention_mask"]

    def copy_inputs(self, passages: Sequence[Passage]) -> list[torch.Tensor]:
        """What the copy mechanism reads of each passage: the pointer's reduced ids of the encoder's
        positions ([L], aligned with `encode_passages`' states), else the gate's mask ([V'])."""
        if not self.config.copy_pointer:
            return list(self.copy_mask(passages))
        batch = self.encoder.tokenize(
            [f"{p.title} {p.text}" for p in passages], "passage", self.config.max_passage_len
        )
        ids = self.reduced_of_full[batch["input_ids"].to(self.out_bias.device)]
        return [row[: int(n)] for row, n in zip(ids, batch["attention_mask"].sum(1))]

    def stack_copy(self, items: Sequence[torch.Tensor]) -> torch.Tensor:
        """One batch of `copy_inputs` rows (`stack_copy_inputs` for this generator's mechanism)."""
        return stack_copy_inputs(items, self.config.copy_pointer)

    def copy_mask(self, passages: Sequence[Passage]) -> torch.Tensor:
        """[B, V'] 1.0 where a reduced-vocabulary piece occurs in the passage."""
        ids = self.encoder.tokenizer(
            [f"{p.title} {p.text}" for p in passages],
            add_special_tokens=False,
            truncation=True,
            max_length=self.config.max_passage_len,
        )["input_ids"]
        mask = torch.zeros(len(passages), self.vocab_size, device=self.out_bias.device)
        for row, seq in enumerate(ids):
            red = self.reduced_of_full[torch.tensor(seq, dtype=torch.long, device=mask.device)]
            mask[row, red[red >= 3 + len(self.languages)]] = 1.0
        return mask

    # -- decoding --------------------------------------------------------------------------
    def _bias(self, mem_mask: torch.Tensor) -> torch.Tensor:
        zeros = torch.zeros(mem_mask.shape, dtype=torch.float32, device=mem_mask.device)
        return zeros.masked_fill(mem_mask == 0, float("-inf"))[:, None, None, :]

    def logits(self, tokens, states, mem_mask, copy, start: int = 0, caches=None, allowed=None, columns=None):
        """Scores for `tokens` at positions start..; `caches` as returned before (or None).

        `copy` is a `stack_copy` batch; `allowed` ([V'] bool, or None) the pieces the vocabulary
        may give (the copy mechanism's are kept). Scores are logits, or with the pointer
        log-probabilities (either way a softmax gives the next piece's distribution). With
        `columns` (`sampling_columns`), scores are given for those pieces only, in their order, and
        `copy` and `allowed` are in the same terms (the column of each piece, its mask by column)."""
        x, new = self._decode(tokens, states, mem_mask, start, caches)
        weight, bias = self.embed.weight, self.out_bias
        if columns is not None:
            weight, bias = weight[columns], bias[columns]
        out = x @ weight.T + bias
        if self.config.copy_pointer:
            if allowed is not None:
                out = out.masked_fill(~allowed, float("-inf"))
            keys = caches[-1][1] if caches is not None else self.ptr_k(states)
            new.append((None, keys))
            switch, att = self._pointer(x, keys, copy)
            copied = torch.zeros(out.shape, dtype=torch.float32, device=out.device)
            copied.scatter_add_(2, copy[:, None, :].expand(-1, out.shape[1], -1), att)
            mixed = (1 - switch) * out.float().softmax(-1) + switch * copied
            return mixed.clamp_min(1e-12).log(), new
        if self.config.copy_gate:
            out = out + self.copy(x) * copy[:, None, :]
        if allowed is not None:  # the gate copies the passage's pieces: they stay possible
            keep = allowed | (copy[:, None, :] > 0) if self.config.copy_gate else allowed
            out = out.masked_fill(~keep, float("-inf"))
        return out, new

    def allowed_pieces(self, language: str) -> torch.Tensor | None:
        """[V'] True for the pieces `language`'s samples may draw from the vocabulary (EOS
        included), or None when the configuration does not restrict that language."""
        full = self.config.language_pieces.get(normalise_code(language))
        if full is None:
            return None
        allowed = torch.zeros(self.vocab_size, dtype=torch.bool, device=self.out_bias.device)
        allowed[self.reduced_of_full[torch.tensor(full, dtype=torch.long, device=allowed.device)]] = True
        allowed[[PAD, UNK]] = False
        allowed[EOS] = True
        return allowed

    def sampling_columns(self, allowed: torch.Tensor | None, copy: torch.Tensor) -> torch.Tensor | None:
        """The pieces a pointer generator's restricted sample can draw in this batch: the specials
        (first, at their own ids), the allowed pieces and those the passages give to copy; None
        (the whole vocabulary) without a restriction, without the pointer or with
        `score_every_piece` set.

        Scoring only these is the same distribution as scoring the whole vocabulary and masking
        the rest (their probability is zero), at a fraction of the cost: a language's pieces are
        about a tenth of the vocabulary, and the output layer and the passes over its scores were
        most of a sampling step."""
        if allowed is None or not self.config.copy_pointer or self.score_every_piece:
            return None
        keep = allowed.clone()
        keep[: 3 + len(self.languages)] = True
        keep[copy.flatten()] = True
        return torch.nonzero(keep)[:, 0]

    def script_letters(self, language: str) -> tuple[torch.Tensor, torch.Tensor]:
        """[V'] float counts of each piece's letters in `language`'s script and in any other."""
        lang, device = normalise_code(language), self.out_bias.device
        key = (lang, str(device))
        if key not in self._letters_memo:
            full = self.full_of_reduced.tolist()
            # each piece decoded on its own: its letters as written, whatever the tokenizer's spelling
            texts = self.encoder.tokenizer.batch_decode([[max(i, 0)] for i in full], skip_special_tokens=True)
            counts = [
                script_letter_counts(t, script_of(lang)) if i >= 0 else (0, 0) for i, t in zip(full, texts)
            ]
            own, other = torch.tensor(counts, dtype=torch.float32, device=device).T
            self._letters_memo[key] = (own, other)
        return self._letters_memo[key]

    def restrict_vocabulary(self, triples: Sequence[Triple]) -> None:
        """Restrict each language's samples to the pieces its questions in `triples` use; a
        language with no question there stays unrestricted (a generator-unseen one)."""
        questions: dict[str, list[str]] = {}
        for t in triples:
            questions.setdefault(normalise_code(t.language), []).append(t.question)
        tok = self.encoder.tokenizer
        self.config.language_pieces = {
            lang: kept_pieces(tok, texts)
            for lang, texts in sorted(questions.items())
            if lang in self.languages
        }

    def _decode(self, tokens, states, mem_mask, start: int, caches):
        """The decoder's top states for `tokens` and the new caches."""
        pos = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        x = self.emb_drop(self.emb_ln(self.embed(tokens) + self.pos(pos)[None]))
        bias = self._bias(mem_mask)
        new = []
        for i, layer in enumerate(self.layers):
            mem_kv = caches[i][1] if caches is not None else layer.memory(states)
            x, kv = layer(x, mem_kv, bias, caches[i][0] if caches is not None else None)
            new.append((kv, mem_kv))
        return x, new

    def _pointer(self, x, keys, ids) -> tuple[torch.Tensor, torch.Tensor]:
        """The switch s [B, T, 1] and the attention over passage positions [B, T, L], in fp32:
        p(piece) = (1 - s) softmax(logits)[piece] + s * attention mass on the piece's positions."""
        scores = (self.ptr_q(x) @ keys.transpose(1, 2)).float() * keys.shape[-1] ** -0.5
        # specials ([CLS], [SEP]) and padding are never copied
        scores = scores.masked_fill((ids < 3 + len(self.languages))[:, None, :], float("-inf"))
        return torch.sigmoid(self.copy(x).float()), scores.softmax(-1)

    def loss(self, states, mem_mask, copy, targets: torch.Tensor) -> torch.Tensor:
        """Teacher-forced cross-entropy; `targets` = [language token, pieces..., EOS, PAD...]."""
        if self.config.copy_pointer:  # the targets' probabilities only: no [B, T, V] copy tensor
            x, _ = self._decode(targets[:, :-1], states, mem_mask, 0, None)
            gold = targets[:, 1:]
            vocab = F.log_softmax((x @ self.embed.weight.T + self.out_bias).float(), -1)
            switch, att = self._pointer(x, self.ptr_k(states), copy)
            switch = switch[..., 0]
            copied = (att * (copy[:, None, :] == gold[:, :, None])).sum(-1)
            p = (1 - switch) * vocab.gather(2, gold[..., None])[..., 0].exp() + switch * copied
            keep = gold != PAD
            return -p.clamp_min(1e-12).log()[keep].mean()
        out, _ = self.logits(targets[:, :-1], states, mem_mask, copy)
        return F.cross_entropy(out.reshape(-1, self.vocab_size), targets[:, 1:].reshape(-1), ignore_index=PAD)

    def target_ids(self, language: str, question: str) -> list[int]:
        """Reduced ids of a training question with its language token and EOS."""
        full = self.encoder.tokenizer(question, add_special_tokens=False)["input_ids"]
        red = self.reduced_of_full[torch.tensor(full, dtype=torch.long, device=self.out_bias.device)].tolist()
        lang = 3 + self.languages.index(normalise_code(language))
        return [lang, *red[: self.config.max_question_len], EOS]

    def decode_samples(self, seqs: torch.Tensor, n: int) -> list[list[str]]:
        """The texts of `sample_ids`' samples, `n` per passage."""
        first_piece = 3 + len(self.languages)
        texts = []
        for row in seqs.tolist():
            row = row[: row.index(EOS)] if EOS in row else row
            ids = [int(self.full_of_reduced[i]) for i in row if i >= first_piece]
            texts.append(self.encoder.tokenizer.decode(ids, skip_special_tokens=True).strip())
        return [texts[i : i + n] for i in range(0, len(texts), n)]

    @torch.no_grad()
    def sample_ids(
        self,
        states,
        mem_mask,
        copy,
        language: str,
        n: int,
        top_k: int,
        max_new_tokens: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """`n` top-k samples per passage, decoded with a KV cache: reduced ids [B * n, T], each
        passage's n in a row (EOS ends a sample, PAD follows it); `decode_samples` gives the texts."""
        self.eval()
        b = states.shape[0]
        states, mem_mask = states.repeat_interleave(n, 0), mem_mask.repeat_interleave(n, 0)
        copy = copy.repeat_interleave(n, 0)
        lang = 3 + self.languages.index(normalise_code(language))
        allowed = self.allowed_pieces(language)
        # pieces are drawn as columns of `columns` (the specials keep their ids) and mapped back at the end
        columns = self.sampling_columns(allowed, copy)
        if columns is not None:
            column_of = torch.full((self.vocab_size,), PAD, dtype=torch.long, device=states.device)
            column_of[columns] = torch.arange(len(columns), device=states.device)
            copy, allowed = column_of[copy], allowed[columns]
        tokens = torch.full((b * n, 1), lang, dtype=torch.long, device=states.device)
        done = torch.zeros(b * n, dtype=torch.bool, device=states.device)
        if self.config.script_budget:  # letters written so far, in the language's script and in others
            own_letters, other_letters = self.script_letters(language)
            if columns is not None:
                own_letters, other_letters = own_letters[columns], other_letters[columns]
            foreign = (other_letters > 0)[None, :]
            own_n = torch.zeros(b * n, device=states.device)
            other_n = torch.zeros(b * n, device=states.device)
        out, caches, step_tokens = [], None, tokens
        max_new = min(max_new_tokens, self.pos.num_embeddings - 1)
        for t in range(max_new):
            logits, caches = self.logits(step_tokens, states, mem_mask, copy, t, caches, allowed, columns)
            logits = logits[:, -1]
            logits[:, [PAD, UNK]] = float("-inf")
            logits[:, 3 : 3 + len(self.languages)] = float("-inf")
            if not out:  # an empty question is no question
                logits[:, EOS] = float("-inf")
            elif self.config.script_budget:
                over = other_n >= own_n
                logits.masked_fill_(over[:, None] & foreign, float("-inf"))
            if out:  # no piece twice in a row, and a penalty on pieces already written
                prev = torch.stack(out, 1)
                # penalise only the written pieces (gather/scatter, not a pass over the vocabulary);
                # a piece written twice gets the same value from each write: penalised once
                seen = logits.gather(1, prev)
                logits.scatter_(
                    1,
                    prev,
                    torch.where(seen > 0, seen / self.repetition_penalty, seen * self.repetition_penalty),
                )
                logits.scatter_(1, prev[:, -1:], float("-inf"))
            top, idx = logits.topk(min(top_k, logits.shape[-1]), -1)
            choice = torch.multinomial(F.softmax(top, -1), 1, generator=generator)
            nxt = idx.gather(1, choice).squeeze(1)
            nxt[done] = PAD
            out.append(nxt)
            if self.config.script_budget:
                own_n += own_letters[nxt]
                other_n += other_letters[nxt]
            done |= nxt == EOS
            if done.all():
                break
            step_tokens = nxt[:, None] if columns is None else columns[nxt][:, None]
        if not out:
            return torch.zeros(b * n, 0, dtype=torch.long, device=states.device)
        seqs = torch.stack(out, 1)
        return seqs if columns is None else columns[seqs]

    def generate(
        self,
        passages: Sequence[Passage],
        language: str,
        n: int,
        *,
        top_k: int = 10,
        max_new_tokens: int = 32,
        seed: int = 0,
    ) -> list[list[str]]:
        """`n` questions in `language` for each passage (the QueryGenerator interface).

        The encoder states of the last batch are kept, so that asking for the same passages in
        another language costs no second encoder pass."""
        key = tuple(p.id for p in passages)
        if self._state_memo is None or self._state_memo[0] != key:
            copy = self.stack_copy(self.copy_inputs(passages))
            self._state_memo = (key, (*self.encode_passages(passages), copy))
        states, mask, copy = self._state_memo[1]
        g = torch.Generator(device=states.device).manual_seed(seed)
        return self.decode_samples(
            self.sample_ids(states, mask, copy, language, n, top_k, max_new_tokens, g), n
        )

    def forget_passages(self) -> None:
        """Drop the encoder states `generate` keeps of its last batch (a timed run starts cold)."""
        self._state_memo = None

    # -- persistence -----------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> None:
        """Decoder weights and config (the frozen encoder is referenced by path)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}
        torch.save(state, out_dir / WEIGHTS_FILE)
        (out_dir / CONFIG_FILE).write_text(json.dumps(asdict(self.config)))

    @classmethod
    def load(cls, path: str | Path, encoder: Encoder | None = None) -> E5QuestionGenerator:
        """Rebuild a saved generator (loading its e5 encoder unless one is passed)."""
        path = Path(path)
        if not (path / CONFIG_FILE).exists() or not (path / WEIGHTS_FILE).exists():
            raise FileNotFoundError(f"{path}: not an e5 generator folder ({CONFIG_FILE}, {WEIGHTS_FILE})")
        config = GeneratorConfig(**json.loads((path / CONFIG_FILE).read_text()))
        encoder = encoder or Encoder.from_pretrained(config.encoder_path)
        model = cls(encoder, config, warm_start=False)
        model.load_decoder(path)
        return model

    def load_decoder(self, path: str | Path) -> None:
        """Take the decoder weights of a saved generator with this one's vocabulary and layers."""
        path = Path(path)
        saved = GeneratorConfig(**json.loads((path / CONFIG_FILE).read_text()))
        mine = asdict(self.config)
        settings = ("encoder_path", "language_pieces", "script_budget")  # not the weights' shape
        differ = [k for k, v in asdict(saved).items() if k not in settings and mine.get(k) != v]
        if differ:
            raise ValueError(f"{path / CONFIG_FILE}: {', '.join(differ)} differ from this generator's")
        weights = torch.load(path / WEIGHTS_FILE, map_location=self.out_bias.device)
        self.load_state_dict(weights, strict=False)


def kept_pieces(tokenizer, texts: Sequence[str]) -> list[int]:
    """Sorted full-vocabulary ids of every piece the texts use (specials excluded)."""
    ids: set[int] = set()
    for start in range(0, len(texts), 512):
        for seq in tokenizer(list(texts[start : start + 512]), add_special_tokens=False)["input_ids"]:
            ids.update(seq)
    ids -= set(tokenizer.all_special_ids)
    return sorted(ids)


def build_generator(
    encoder_path: str | Path,
    languages: Sequence[str],
    vocabulary_texts: Sequence[str],
    n_layers: int = 2,
    copy_gate: bool = True,
    encoder: Encoder | None = None,
    seed: int = 0,
    dropout: float = 0.0,
    copy_pointer: bool = False,
    script_budget: bool = False,
) -> E5QuestionGenerator:
    """A fresh warm-started generator whose vocabulary covers `vocabulary_texts`."""
    torch.manual_seed(seed)
    encoder = encoder or Encoder.from_pretrained(encoder_path, EncoderSpec.for_model(str(encoder_path)))
    config = GeneratorConfig(
        str(encoder_path),
        list(languages),
        kept_pieces(encoder.tokenizer, vocabulary_texts),
        n_layers=n_layers,
        copy_gate=copy_gate,
        copy_pointer=copy_pointer,
        dropout=dropout,
        script_budget=script_budget,
    )
    return E5QuestionGenerator(encoder, config)


def param_count(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
