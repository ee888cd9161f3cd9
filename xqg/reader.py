"""Extractive reader for end-to-end QA: reads the top-k retrieved passages, picks the best span.

Any Hugging Face extractive QA model loads by name or path (`AutoModelForQuestionAnswering`);
`Reader.from_encoder` puts a fresh span head on an encoder checkpoint (the offline e5 in `mini`,
a tiny random one in `smoke`) to be trained here. A span's score is start logit + end logit
(spans within the context, end >= start, at most `max_answer_tokens` long); across passages the
highest-scoring span wins, as in DPR's reader without its passage-selection head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from xqg.io import atomic_dir


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

    def __init__(self, model, tokenizer, max_length: int = 256, max_answer_tokens: int = 30):
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.max_answer_tokens = max_length, max_answer_tokens

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
    def from_encoder(cls, model, tokenizer, **kwargs) -> Reader:
        """A reader whose span head starts fresh on top of an encoder's weights."""
        from transformers import AutoModelForQuestionAnswering

        qa = AutoModelForQuestionAnswering.from_config(model.config)
        base = getattr(qa, qa.base_model_prefix)
        missing = base.load_state_dict(model.state_dict(), strict=False).missing_keys
        if [k for k in missing if "pooler" not in k]:
            raise ValueError(f"encoder weights do not fit the QA model: missing {missing[:5]}")
        return cls(qa, tokenizer, **kwargs)

    def save(self, out_dir: str | Path) -> None:
        """Save model and tokenizer atomically."""
        with atomic_dir(out_dir) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)

    def _encode(self, questions: Sequence[str], contexts: Sequence[str]) -> dict:
        return self.tokenizer(
            list(questions),
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
        inputs = {k: v for k, v in enc.items() if k != "offset_mapping"}
        return self.model(
            **inputs, start_positions=torch.tensor(starts), end_positions=torch.tensor(ends)
        ).loss

    @torch.inference_mode()
    def best_spans(self, question: str, passages: Sequence[tuple[str, str]]) -> list[Answer]:
        """The best span of each (passage id, text), in the order given."""
        self.model.eval()
        enc = self._encode([question] * len(passages), [text for _, text in passages])
        inputs = {k: v for k, v in enc.items() if k != "offset_mapping"}
        out = self.model(**inputs)
        answers = []
        for i, (pid, text) in enumerate(passages):
            in_context = torch.tensor([s == 1 for s in enc.sequence_ids(i)])
            start = out.start_logits[i].masked_fill(~in_context, float("-inf"))
            end = out.end_logits[i].masked_fill(~in_context, float("-inf"))
            scores = start[:, None] + end[None, :]
            n = scores.shape[0]
            valid = torch.ones(n, n, dtype=torch.bool).triu() & ~torch.ones(n, n, dtype=torch.bool).triu(
                self.max_answer_tokens
            )
            scores = scores.masked_fill(~valid, float("-inf"))
            flat = int(scores.argmax())
            s, e = divmod(flat, n)
            offsets = enc["offset_mapping"][i].tolist()
            answers.append(Answer(text[offsets[s][0] : offsets[e][1]], pid, float(scores[s, e])))
        return answers

    def answer(self, question: str, passages: Sequence[tuple[str, str]]) -> Answer:
        """The highest-scoring span across the passages."""
        if not passages:
            raise ValueError("no passages to read")
        return max(self.best_spans(question, passages), key=lambda a: a.score)
