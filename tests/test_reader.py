"""The reader: span selection across passages on a hand-made case, a training step, and training
that resumes after a kill."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from xqg.models.tiny import tiny_encoder
from xqg.qa.reader import QAExample, Reader
from xqg.training.reader import ReaderTrainingArgs, freeze_lower_layers, train_reader


@pytest.fixture(scope="module")
def tiny(small_texts):
    return tiny_encoder(small_texts + ["Paris is in France.", "Rome is in Italy."], "bert", seed=0)


class _StubQA(torch.nn.Module):
    """Logits chosen by hand for the (question, passage) rows named by their token ids: `value` on
    the chosen start and end tokens (one or a list of (start, end, value) per row), 0 elsewhere
    (rows may arrive in any order or batch)."""

    def __init__(self, targets):
        super().__init__()
        self.targets = targets  # {tuple of a row's token ids: (start, end, value)}

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        start = torch.zeros(input_ids.shape, dtype=torch.float)
        end = torch.zeros(input_ids.shape, dtype=torch.float)
        for row in range(input_ids.shape[0]):
            key = tuple(input_ids[row][attention_mask[row] == 1].tolist())
            target = self.targets.get(key, [])
            for s, e, value in target if isinstance(target, list) else [target]:
                start[row, s], end[row, e] = value, value
        return SimpleNamespace(start_logits=start, end_logits=end)


def _row_key(reader, question, text):
    return tuple(reader._encode([question], [text])["input_ids"][0].tolist())


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
    reader.model = _StubQA(
        {
            _row_key(reader, q, passages[0][1]): (s1, e1, 2.0),
            _row_key(reader, q, passages[1][1]): (s2, e2, 5.0),
        }
    )
    best = reader.answer(q, passages)
    assert (best.text, best.passage_id, best.score) == ("Paris", "p2", 10.0)
    per = reader.best_spans(q, passages)
    assert [a.text for a in per] == ["Rome", "Paris"]
    with pytest.raises(ValueError, match="no passages"):
        reader.answer(q, [])


def test_long_passage_is_read_in_windows(tiny):
    """An answer far beyond the first window is still found, in the window that holds it."""
    reader = Reader(None, tiny.tokenizer, max_length=24, stride=4)
    q = "Which city?"
    text = " ".join(["Rome is in Italy."] * 12) + " Paris is in France."
    hits = {}

    class _Windowed(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            start = torch.zeros(input_ids.shape)
            end = torch.zeros(input_ids.shape)
            paris = tiny.tokenizer("Paris", add_special_tokens=False)["input_ids"]
            for row in range(input_ids.shape[0]):
                ids = input_ids[row].tolist()
                for t in range(len(ids) - len(paris) + 1):
                    if ids[t : t + len(paris)] == paris:
                        start[row, t], end[row, t + len(paris) - 1] = 3.0, 3.0
                        hits[row] = t
            return SimpleNamespace(start_logits=start, end_logits=end)

    reader.model = _Windowed()
    (answer,) = reader.read([(q, "p", text)])
    assert answer.text == "Paris" and answer.score == 6.0
    assert max(hits) > 0  # found in a later window, not the first


def test_spans_never_come_from_the_question(tiny):
    reader = Reader(None, tiny.tokenizer)
    q, text = "Paris or Rome?", "Rome is in Italy."
    enc = reader._encode([q], [text])
    question_token = next(t for t, s in enumerate(enc.sequence_ids(0)) if s == 0)
    italy = _span_tokens(reader, q, text, "Italy")
    reader.model = _StubQA(
        {_row_key(reader, q, text): [(question_token, question_token, 50.0), (*italy, 5.0)]}
    )
    answer = reader.answer(q, [("p", text)])
    # the +50 on a question token is masked out: the passage span with +5 wins
    assert answer.text == "Italy" and answer.score == 10.0


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


def _english_examples(mlqa, n: int) -> list[QAExample]:
    examples = []
    for q in [q for q in mlqa.queries if q.language == "en"][:n]:
        text = mlqa.passages[q.gold_passage].text
        examples.append(QAExample(q.text, text, q.answers[0], text.find(q.answers[0])))
    return examples


def test_killed_reader_training_resumes_to_the_uninterrupted_weights(tiny, mlqa, tmp_path):
    """A kill after 6 of 20 steps, then a rerun from the state file: the same weights and loss
    history as one run (dropout's random stream, the batch order and the windows included), and
    only the 14 missing steps are computed."""
    examples = _english_examples(mlqa, 12)
    args = ReaderTrainingArgs(steps=20, batch_size=4, learning_rate=1e-3, window_chars=120, seed=3)

    def fresh() -> Reader:
        torch.manual_seed(0)  # the span head, as step 06 draws it
        return Reader.from_encoder(tiny.model, tiny.tokenizer, max_length=64)

    assert tiny.model.config.hidden_dropout_prob > 0  # dropout draws from torch's stream
    once = fresh()
    history = train_reader(once, examples, args)

    class Killed(Exception):
        pass

    state = tmp_path / "training_state.pt"
    killed, calls = fresh(), []
    loss = killed.loss

    def dying_loss(batch):
        calls.append(len(batch))
        if len(calls) == 8:  # step 8 of 20: the state of step 6 (every tenth = 2 steps) is on disk
            raise Killed
        return loss(batch)

    killed.loss = dying_loss
    with pytest.raises(Killed):
        train_reader(killed, examples, args, state)
    assert torch.load(state, weights_only=False)["step"] == 6

    resumed, calls = fresh(), []
    loss = resumed.loss
    resumed.loss = lambda batch: (calls.append(len(batch)), loss(batch))[1]
    assert train_reader(resumed, examples, args, state) == history
    assert len(calls) == 14
    a, b = once.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a state of other settings is refused, naming the file
    with pytest.raises(ValueError, match="training_state.pt"):
        train_reader(fresh(), examples, dataclasses.replace(args, steps=30), state)


def test_frozen_lower_layers_keep_their_weights_and_the_rest_trains(tiny, mlqa):
    """`freeze_layers`: the embeddings and the lowest layers stay as they were (no gradient reaches
    them, so AdamW's weight decay leaves them too); the layers above and the span head train."""
    torch.manual_seed(0)
    reader = Reader.from_encoder(tiny.model, tiny.tokenizer, max_length=64)
    layers = len(reader.model.bert.encoder.layer)
    assert layers >= 2
    before = {k: v.clone() for k, v in reader.model.state_dict().items()}
    args = ReaderTrainingArgs(steps=3, batch_size=4, learning_rate=1e-3, window_chars=120, freeze_layers=1)
    train_reader(reader, _english_examples(mlqa, 8), args)
    after = reader.model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    trained_layers = {int(k.split(".")[3]) for k in changed if k.startswith("bert.encoder.layer.")}
    assert trained_layers == set(range(1, layers))
    assert not [k for k in changed if k.startswith("bert.embeddings.")]
    assert [k for k in changed if k.startswith("qa_outputs.")]
    with pytest.raises(ValueError, match=f"freeze_layers must be 0..{layers}"):
        train_reader(reader, _english_examples(mlqa, 8), dataclasses.replace(args, freeze_layers=layers + 1))
    freeze_lower_layers(torch.nn.Linear(2, 2), 0)  # nothing to freeze: any model trains as before
    with pytest.raises(ValueError, match="Linear has no BERT-like encoder.layer"):
        freeze_lower_layers(torch.nn.Linear(2, 2), 1)
