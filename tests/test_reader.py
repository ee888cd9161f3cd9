"""The reader: span selection across passages on a hand-made case, and a training step."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from xqg.models.tiny import tiny_encoder
from xqg.reader import QAExample, Reader


@pytest.fixture(scope="module")
def tiny(small_texts):
    return tiny_encoder(small_texts + ["Paris is in France.", "Rome is in Italy."], "bert", seed=0)


class _StubQA(torch.nn.Module):
    """Logits chosen by hand: +5 on the tokens of a target word in one passage, +2 elsewhere."""

    def __init__(self, reader_tokenizer, targets):
        super().__init__()
        self.tok, self.targets = reader_tokenizer, targets

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        start = torch.zeros(input_ids.shape, dtype=torch.float)
        end = torch.zeros(input_ids.shape, dtype=torch.float)
        for row, (s, e, value) in self.targets.items():
            start[row, s], end[row, e] = value, value
        return SimpleNamespace(start_logits=start, end_logits=end)


def _span_tokens(reader, question, text, word):
    enc = reader._encode([question], [text])
    first = text.index(word)
    toks = [
        t
        for t, ((a, b), seq) in enumerate(zip(enc["offset_mapping"][0].tolist(), enc.sequence_ids(0)))
        if seq == 1 and a < first + len(word) and b > first
    ]
    return toks[0], toks[-1]


def test_best_span_is_chosen_across_passages(tiny):
    reader = Reader(None, tiny.tokenizer)
    q = "Which city is the capital?"
    passages = [("p1", "Rome is in Italy and it is old."), ("p2", "Paris is in France, a capital.")]
    s1, e1 = _span_tokens(reader, q, passages[0][1], "Rome")
    s2, e2 = _span_tokens(reader, q, passages[1][1], "Paris")
    reader.model = _StubQA(tiny.tokenizer, {0: (s1, e1, 2.0), 1: (s2, e2, 5.0)})
    best = reader.answer(q, passages)
    assert (best.text, best.passage_id, best.score) == ("Paris", "p2", 10.0)
    per = reader.best_spans(q, passages)
    assert [a.text for a in per] == ["Rome", "Paris"]
    with pytest.raises(ValueError, match="no passages"):
        reader.answer(q, [])


def test_spans_never_come_from_the_question(tiny):
    reader = Reader(None, tiny.tokenizer)
    q, text = "Paris or Rome?", "Rome is in Italy."
    enc = reader._encode([q], [text])
    question_token = next(t for t, s in enumerate(enc.sequence_ids(0)) if s == 0)
    reader.model = _StubQA(tiny.tokenizer, {0: (question_token, question_token, 50.0)})
    answer = reader.answer(q, [("p", text)])
    assert answer.text in text  # the +50 on a question token is masked out


def test_reader_training_step_lowers_the_loss(tiny, mlqa):
    torch.manual_seed(0)
    reader = Reader.from_encoder(tiny.model, tiny.tokenizer, max_length=96)
    examples = []
    for q in [q for q in mlqa.queries if q.language == "en"][:8]:
        text = mlqa.passages[q.gold_passage].text
        start = text.find(q.answers[0])
        examples.append(
            QAExample(q.text, text[max(0, start - 150) : start + 150], q.answers[0], min(start, 150))
        )
    optim = torch.optim.AdamW(reader.model.parameters(), lr=1e-3)
    reader.model.train()
    before = reader.loss(examples).item()
    for _ in range(5):
        optim.zero_grad()
        loss = reader.loss(examples)
        loss.backward()
        optim.step()
    assert reader.loss(examples).item() < before
