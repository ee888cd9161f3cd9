"""Extractive reader for end-to-end QA: reads the top-k retrieved passages, picks the best span.

Any Hugging Face extractive QA model loads by name or path (`AutoModelForQuestionAnswering`);
`Reader.from_encoder` puts a fresh span head on an encoder checkpoint (the offline e5 in `mini`,
a tiny random one in `smoke`) to be trained here. A span's score is start logit + end logit
(spans within the context, end >= start, at most `max_answer_tokens` long); across passages the
highest-scoring span wins, as in DPR's reader without its passage-selection head. A passage
longer than `max_length` is read in windows overlapping by `stride` tokens (SQuAD-style), and its
best window's span stands for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from xqg.io import atomic_dir
from xqg.models.device import device_of, to_device
from xqg.models.precision import autocast


@dataclass(frozen=True)
class Answer:
    """A predicted span: its text, the passage it came from, and its score."""

    text: str
    passage_id: str
    score: float


@dataclass(frozen=True)
class QAExample:
    """A question, a context and (for training) the character offset of the answer."""

    question: str
    context: str
    answer: str = ""
    answer_start: int = -1


class Reader:
    """An extractive QA model and its tokenizer."""

    def __init__(
        self, model, tokenizer, max_length: int = 256, max_answer_tokens: int = 30, stride: int = 64
    ):
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.max_answer_tokens, self.stride = max_length, max_answer_tokens, stride

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, **kwargs) -> Reader:
        """Load a QA model (with its span head) by name or path."""
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        return cls(
            AutoModelForQuestionAnswering.from_pretrained(str(name_or_path)),
            AutoTokenizer.from_pretrained(str(name_or_path)),
            **kwargs,
        )

    @classmethod
    def from_encoder(cls, model, tokenizer, keep_layers: int = 0, **kwargs) -> Reader:
        """A reader whose span head starts fresh on top of an encoder's weights; `keep_layers` > 0
        keeps only the encoder's lowest layers (a cheaper reader, as DistilBERT's truncation)."""
        from transformers import AutoModelForQuestionAnswering

        qa = AutoModelForQuestionAnswering.from_config(model.config)
        base = getattr(qa, qa.base_model_prefix)
        missing = base.load_state_dict(model.state_dict(), strict=False).missing_keys
        if [k for k in missing if "pooler" not in k]:
            raise ValueError(f"encoder weights do not fit the QA model: missing {missing[:5]}")
        n = len(base.encoder.layer)
        if keep_layers < 0 or keep_layers > n:
            raise ValueError(f"keep_layers must be 0 (all) or 1..{n}, got {keep_layers}")
        if keep_layers:
            base.encoder.layer = base.encoder.layer[:keep_layers]
            qa.config.num_hidden_layers = keep_layers
        return cls(qa, tokenizer, **kwargs)

    def to(self, device: torch.device) -> Reader:
        """Move the model to `device`; inputs follow it."""
        self.model.to(device)
        return self

    def save(self, out_dir: str | Path) -> None:
        """Save model and tokenizer atomically."""
        with atomic_dir(out_dir) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)

    def _encode(self, questions: Sequence[str], contexts: Sequence[str]) -> dict:
        return self.tokenizer(
            self._fit_questions(list(questions))[0],
            list(contexts),
            truncation="only_second",
            max_length=self.max_length,
            padding=True,
            return_offsets_mapping=True,
            return_tensors="pt",
        )

    def loss(self, batch: Sequence[QAExample]) -> torch.Tensor:
        """Cross-entropy of the answer's start and end tokens (CLS when it was truncated away)."""
        enc = self._encode([e.question for e in batch], [e.context for e in batch])
        starts, ends = [], []
        for i, ex in enumerate(batch):
            s_tok = e_tok = 0
            a_start, a_end = ex.answer_start, ex.answer_start + len(ex.answer)
            for t, (off, seq) in enumerate(zip(enc["offset_mapping"][i].tolist(), enc.sequence_ids(i))):
                if seq != 1:
                    continue
                if off[0] <= a_start < off[1]:
                    s_tok = t
                if off[0] < a_end <= off[1]:
                    e_tok = t
            if e_tok < s_tok:
                s_tok = e_tok = 0
            starts.append(s_tok)
            ends.append(e_tok)
        device = device_of(self.model)
        inputs = to_device({k: v for k, v in enc.items() if k != "offset_mapping"}, device)
        return self.model(
            **inputs,
            start_positions=torch.tensor(starts, device=device),
            end_positions=torch.tensor(ends, device=device),
        ).loss

    def _best_in_row(self, start_logits, end_logits, sequence_ids) -> tuple[int, int, float]:
        """(start token, end token, score) of the best span within the context part of one row."""
        in_context = torch.tensor([s == 1 for s in sequence_ids], device=start_logits.device)
        start = start_logits.float().masked_fill(~in_context, float("-inf"))
        end = end_logits.float().masked_fill(~in_context, float("-inf"))
        scores = start[:, None] + end[None, :]
        n = scores.shape[0]
        ones = torch.ones(n, n, dtype=torch.bool, device=scores.device)
        valid = ones.triu() & ~ones.triu(self.max_answer_tokens)
        scores = scores.masked_fill(~valid, float("-inf"))
        s, e = divmod(int(scores.argmax()), n)
        return s, e, float(scores[s, e])

    def _fit_questions(self, questions: list[str]) -> tuple[list[str], int]:
        """Questions cut to half of `max_length` tokens (the rest is the passage's), and the
        longest one's length."""
        limit = self.max_length // 2
        ids = self.tokenizer(questions, add_special_tokens=False)["input_ids"]
        fitted = [q if len(t) <= limit else self.tokenizer.decode(t[:limit]) for q, t in zip(questions, ids)]
        return fitted, min(limit, max((len(t) for t in ids), default=0))

    @torch.inference_mode()
    def read(
        self, pairs: Sequence[tuple[str, str, str]], batch_size: int = 32, dtype: str = "float32"
    ) -> list[Answer]:
        """The best span of each (question, passage id, passage text), in the order given.

        Pairs are batched by length; a long passage is split into windows overlapping by `stride`
        tokens and its best window wins. `dtype` "bfloat16" runs the model under autocast on its
        device."""
        self.model.eval()
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][2]))
        best: dict[int, Answer] = {}
        batches = range(0, len(order), batch_size)
        for b in tqdm(batches, desc="read", disable=len(batches) < 4):
            idx = order[b : b + batch_size]
            questions, longest = self._fit_questions([pairs[i][0] for i in idx])
            enc = self.tokenizer(
                questions,
                [pairs[i][2] for i in idx],
                truncation="only_second",
                max_length=self.max_length,
                # windows must advance: the overlap stays under half of what the question leaves
                stride=max(0, min(self.stride, (self.max_length - longest - 4) // 2)),
                return_overflowing_tokens=True,
                padding=True,
                return_offsets_mapping=True,
                return_tensors="pt",
            )
            rows = enc["overflow_to_sample_mapping"].tolist()
            device = device_of(self.model)
            inputs = to_device(
                {k: v for k, v in enc.items() if k not in ("offset_mapping", "overflow_to_sample_mapping")},
                device,
            )
            with autocast(dtype, device.type):
                out = self.model(**inputs)
            for row, local in enumerate(rows):
                i = idx[local]
                _, pid, text = pairs[i]
                s, e, score = self._best_in_row(
                    out.start_logits[row], out.end_logits[row], enc.sequence_ids(row)
                )
                offsets = enc["offset_mapping"][row].tolist()
                if i not in best or score > best[i].score:
                    best[i] = Answer(text[offsets[s][0] : offsets[e][1]].strip(), pid, score)
        return [best[i] for i in range(len(pairs))]

    def best_spans(self, question: str, passages: Sequence[tuple[str, str]]) -> list[Answer]:
        """The best span of each (passage id, text), in the order given."""
        return self.read([(question, pid, text) for pid, text in passages], batch_size=max(1, len(passages)))

    def answer(self, question: str, passages: Sequence[tuple[str, str]]) -> Answer:
        """The highest-scoring span across the passages."""
        if not passages:
            raise ValueError("no passages to read")
        return max(self.best_spans(question, passages), key=lambda a: a.score)
