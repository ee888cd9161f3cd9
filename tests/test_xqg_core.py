"""The xQG core: augmentation formula, generators (tiny mT5 and e5-style), resumable generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xqg.data.schema import Passage
from xqg.generation.e5_generator import EOS, PAD, UNK, E5QuestionGenerator, build_generator
from xqg.generation.prompts import Triple, prompt, triples
from xqg.generation.quality import in_language, passage_word_share, report, round_trip, script_share
from xqg.generation.quality_table import held_out_columns, with_macro
from xqg.generation.run import generate_collection, load_generated
from xqg.generation.seq2seq import Seq2SeqGenerator, Seq2SeqTrainingArgs, fine_tune
from xqg.generation.train_e5 import (
    GeneratorTrainingArgs,
    TrainingEncodings,
    train_e5_generator,
    training_passages,
)
from xqg.models.tiny import tiny_encoder, tiny_mt5
from xqg.retrieval.augment import GeneratedEmbeddings, augment


def _generated(pids, langs, n, d, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(p, lang, s) for p in pids for lang in langs for s in range(n)]
    return GeneratedEmbeddings(
        [r[0] for r in rows],
        [r[1] for r in rows],
        np.array([r[2] for r in rows]),
        rng.normal(size=(len(rows), d)).astype(np.float32),
    )


def test_prompt_is_the_papers():
    assert (
        prompt("ja", "Tokyo", "Tokyo is big.")
        == "Generate a Japanese question for this passage: Tokyo Tokyo is big."
    )
    with pytest.raises(ValueError, match="unknown language code 'xx'"):
        prompt("xx", "t", "p")


def test_alpha_zero_is_identity_and_formula_by_hand():
    pids = ["a", "b"]
    p = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    gen = GeneratedEmbeddings(
        ["a", "a", "b", "b"],
        ["fi", "fi", "fi", "fi"],
        np.array([0, 1, 0, 1]),
        np.array([[1, 1], [3, 1], [0, 4], [2, 2]], np.float32),
    )
    np.testing.assert_array_equal(augment(pids, p, gen, alpha=0.0), p)
    got = augment(pids, p, gen, alpha=0.5)
    # a: 0.5 * [1, 0] + 0.5 * ([1, 1] + [3, 1]) = [2.5, 1]; b: 0.5 * [0, 2] + 0.5 * [2, 6] = [1, 4]
    np.testing.assert_allclose(got, [[2.5, 1.0], [1.0, 4.0]])
    mean = augment(pids, p, gen, alpha=0.5, mode="mean")
    np.testing.assert_allclose(mean, [[1.5, 0.5], [0.5, 2.5]])


def test_subsets_equal_augmenting_from_scratch():
    pids = [f"p{i}" for i in range(5)]
    p = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
    full = _generated(pids, ["ar", "de", "zh"], 4, 8)
    scratch = GeneratedEmbeddings(
        *zip(
            *[
                (r_p, r_l, r_s)
                for r_p, r_l, r_s in zip(full.passage_ids, full.languages, full.samples)
                if r_s < 2 and r_l in ("ar", "zh")
            ]
        ),
        emb=full.emb[(full.samples < 2) & np.isin(full.languages, ["ar", "zh"])],
    )
    scratch = GeneratedEmbeddings(
        list(scratch.passage_ids), list(scratch.languages), np.array(scratch.samples), scratch.emb
    )
    np.testing.assert_allclose(
        augment(pids, p, full.select(n=2, languages=["ar", "zh"]), 0.1),
        augment(pids, p, scratch, 0.1),
        rtol=1e-6,
    )


def test_misaligned_generated_queries_are_refused():
    p = np.zeros((2, 4), np.float32)
    gen = _generated(["a"], ["de"], 2, 4)
    with pytest.raises(KeyError, match="1 passages have no generated queries"):
        augment(["a", "b"], p, gen)
    kept = augment(["a", "b"], p, gen, alpha=0.5, on_missing="keep")
    np.testing.assert_array_equal(kept[1], p[1])
    with pytest.raises(KeyError, match="not in the collection"):
        augment(["b"], p[:1], gen, on_missing="keep")
    uneven = GeneratedEmbeddings(["a", "a", "b"], ["de", "de", "de"], np.array([0, 1, 0]), np.ones((3, 4)))
    with pytest.raises(ValueError, match="uneven"):
        augment(["a", "b"], p, uneven)
    with pytest.raises(ValueError, match="dimension mismatch"):
        augment(["a"], np.zeros((1, 3), np.float32), gen)


def test_quality_checks_scripts_and_languages():
    assert script_share("ما هي عاصمة فرنسا؟", "Arabic") == 1.0
    assert script_share("भारत की राजधानी", "Devanagari") == 1.0
    assert script_share("北京在哪里", "Han") == 1.0
    assert in_language("¿Cuál es la capital de Francia?", "es")
    assert not in_language("Was ist die Hauptstadt von Frankreich?", "es")
    assert in_language("Thủ đô của Pháp là gì?", "vi")
    df = report(
        [
            {"passage_id": "a", "language": "de", "sample": i, "text": t}
            for i, t in enumerate(["Wer ist das?", "Wer ist das?", "Was ist der Fluss?"])
        ]
    )
    assert df.loc["de", "duplicates within passage %"] == pytest.approx(100 / 3)
    assert df.loc["de", "in language %"] == 100.0


def test_quality_reports_held_out_passages_apart_and_a_macro_row():
    texts = {
        "de": ["Wer ist das?", "Was ist der Fluss?", "Wo liegt die Stadt?"],
        "es": ["¿Quién es?", "Wer ist das?", "¿Dónde?"],
    }
    records = [
        {"passage_id": pid, "language": lang, "text": texts[lang][i]}
        for lang in ("de", "es")
        for i, pid in enumerate(["a", "b", "c"])
    ]
    # rows 0-2 German for a b c, rows 3-5 Spanish for a b c; hits: de a, de c, es b
    found = {0: "a", 2: "c", 4: "b"}
    run = {str(i): [(found.get(i, "z"), 1.0)] for i in range(6)}
    table = report(records)
    table["round-trip R@10"] = round_trip(records, run, 10)
    table = with_macro(table.join(held_out_columns(records, run, {"b", "c"}, 10)))
    assert list(table.index) == ["de", "es", "macro"]
    assert table.loc["de", "round-trip R@10"] == pytest.approx(200 / 3)
    assert table.loc["es", "round-trip R@10"] == pytest.approx(100 / 3)
    assert table["held-out queries"].tolist() == [2, 2, 4]
    assert table.loc["de", "held-out round-trip R@10"] == 50.0  # c found, b not
    assert table.loc["es", "held-out round-trip R@10"] == 50.0  # b found, c not
    assert table.loc["es", "held-out in language %"] == 50.0  # "Wer ist das?" asked for Spanish
    assert table.loc["macro", "round-trip R@10"] == pytest.approx(50.0)
    assert table.loc["macro", "held-out in language %"] == 75.0
    assert table.loc["macro", "queries"] == 6
    nothing = held_out_columns(records, run, set(), 10)
    assert (nothing["held-out queries"] == 0).all() and nothing["held-out round-trip R@10"].isna().all()


@pytest.fixture(scope="module")
def mt5(small_texts, tmp_path_factory):
    out = tmp_path_factory.mktemp("mt5")
    tiny_mt5(small_texts + [prompt("de", "t", "p"), prompt("zh", "t", "p")], out)
    return Seq2SeqGenerator.from_pretrained(out)


def test_mt5_smoke_path_trains_and_generates(mt5, mlqa, tmp_path):
    tr = triples(mlqa, ["de", "zh"])[:16]
    before = mt5.loss(tr).item()
    hist = fine_tune(
        mt5,
        tr,
        tr[:4],
        Seq2SeqTrainingArgs(
            output_dir=str(tmp_path / "g"),
            steps=3,
            batch_size=8,
            micro_batch=4,
            learning_rate=1e-3,
            eval_every=3,
        ),
    )
    assert hist[-1]["step"] == 3 and (tmp_path / "g" / "best" / "config.json").exists()
    assert mt5.loss(tr).item() < before
    passage = Passage("p", "Berlin", "Berlin is the capital of Germany.")
    out = mt5.generate([passage], "de", 3, max_new_tokens=8, seed=1)
    assert len(out) == 1 and len(out[0]) == 3
    assert out == mt5.generate([passage], "de", 3, max_new_tokens=8, seed=1)  # seeded


def _tiny_e5_world(small_texts, mlqa) -> tuple:
    """A tiny encoder, 24 real MLQA triples, the texts of their vocabulary and 4 held-out passages."""
    enc = tiny_encoder(small_texts, "bert", seed=0)
    tr = triples(mlqa, ["de", "zh"])[:24]
    texts = [t.question for t in tr] + [f"{t.title} {t.passage}" for t in tr]
    return enc, tr, texts, [Passage(t.passage_id, t.title, t.passage) for t in tr[:4]]


def _four_steps(out, **extra) -> GeneratorTrainingArgs:
    """Four steps with an evaluation every two."""
    return GeneratorTrainingArgs(
        output_dir=str(out),
        steps=4,
        batch_size=8,
        eval_every=2,
        learning_rate=1e-3,
        warmup_steps=1,
        max_new_tokens=6,
        **extra,
    )


def test_e5_style_generator_trains_and_samples_the_language_token(small_texts, mlqa, tmp_path):
    enc, tr, texts, held = _tiny_e5_world(small_texts, mlqa)
    gen = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc)
    hist = train_e5_generator(gen, tr, held, held, _four_steps(tmp_path / "e5g"))
    assert [h["step"] for h in hist] == [2, 4]
    # round-trip Recall@10 per language is a share of the held-out passages; the mean is over languages
    languages = sorted({t.language for t in tr})
    shares = [f"{lang} in language" for lang in languages]
    assert set(hist[-1]) == {"step", "loss", "mean", *languages, *shares, "in language", "mean in language"}
    for key in [*languages, *shares, "mean in language"]:
        hits = hist[-1][key] * len(held) / 100
        assert hits == pytest.approx(round(hits)) and 0 <= round(hits) <= len(held)
    assert hist[-1]["mean"] == pytest.approx(np.mean([hist[-1][lang] for lang in languages]))
    assert hist[-1]["in language"] == pytest.approx(np.mean([hist[-1][key] for key in shares]))
    assert hist[-1]["mean in language"] <= hist[-1]["mean"]  # hits in language are some of the hits
    again = E5QuestionGenerator.load(tmp_path / "e5g" / "last", encoder=enc)
    out = again.generate(held[:2], "zh", 2, max_new_tokens=6, seed=3)
    assert len(out) == 2 and all(len(x) == 2 for x in out)
    assert out == again.generate(held[:2], "zh", 2, max_new_tokens=6, seed=3)
    assert gen.target_ids("zh", "北京")[0] == 3 + gen.languages.index("zh")  # language start token
    # a stage: a fresh generator of the same vocabulary takes the trained decoder (step 02's staging)
    fresh = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc)
    assert not torch.equal(fresh.layers[0].fi.weight, again.layers[0].fi.weight)
    fresh.load_decoder(tmp_path / "e5g" / "last")
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), again.state_dict().values()))
    # dropout (decoder_dropout): active while training only, and saved with the generator
    noisy = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc, dropout=0.5)
    states, mask, copy = noisy.encode_passages(held[:2]) + (noisy.copy_mask(held[:2]),)
    tgt = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(gen.target_ids("zh", "北京")), torch.tensor(gen.target_ids("de", "Wer war das?"))],
        batch_first=True,
    )
    noisy.train()
    assert noisy.loss(states, mask, copy, tgt) != noisy.loss(states, mask, copy, tgt)
    noisy.eval()
    assert noisy.loss(states, mask, copy, tgt) == noisy.loss(states, mask, copy, tgt)
    plain = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc).eval()
    assert noisy.loss(states, mask, copy, tgt) == plain.loss(states, mask, copy, tgt)  # untrained twins
    noisy.save(tmp_path / "noisy")
    assert E5QuestionGenerator.load(tmp_path / "noisy", encoder=enc).config.dropout == 0.5
    other = build_generator("tiny", ["de"], texts, n_layers=1, encoder=enc)
    with pytest.raises(ValueError, match=r"xqg_generator.json: languages differ"):
        other.load_decoder(tmp_path / "e5g" / "last")


def test_e5_pointer_generator_copies_by_attention(small_texts, mlqa, tmp_path):
    """copy_pointer: a proper distribution; with the switch on and a flat pointer, each passage
    piece gets its share of the passage's positions; it trains, resumes, saves and samples."""
    enc, tr, texts, held = _tiny_e5_world(small_texts, mlqa)
    gen = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc, copy_pointer=True)
    states, mask = gen.encode_passages(held[:2])
    copy = gen.stack_copy(gen.copy_inputs(held[:2]))
    assert copy.shape == mask.shape and torch.equal(copy == PAD, mask == 0)  # one id per encoder position
    tgt = torch.tensor([gen.target_ids("zh", "北京")] * 2)
    gen.eval()
    scores, _ = gen.logits(tgt[:, :-1], states, mask, copy)
    assert torch.allclose(scores.exp().sum(-1), torch.ones(scores.shape[:2]), atol=1e-5)
    # the loss reads only the targets' probabilities: the same value as the full distribution's
    full = torch.nn.functional.cross_entropy(scores.reshape(-1, gen.vocab_size), tgt[:, 1:].reshape(-1))
    assert gen.loss(states, mask, copy, tgt).item() == pytest.approx(full.item(), rel=1e-5)
    with torch.no_grad():  # switch fully on, every passage position scored alike
        gen.copy.bias.fill_(50.0)
        gen.ptr_q.weight.zero_()
        gen.ptr_q.bias.zero_()
    probs = gen.logits(tgt[:, :-1], states, mask, copy)[0].exp()
    ids = copy[0][copy[0] >= 3 + len(gen.languages)].tolist()  # specials are never copied
    for piece in set(ids):
        assert probs[0, 0, piece].item() == pytest.approx(ids.count(piece) / len(ids), abs=1e-5)
    assert probs[0, 0, [i for i in range(gen.vocab_size) if i not in set(ids)]].sum() < 1e-6
    fresh = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc, copy_pointer=True)
    batch = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(fresh.target_ids(t.language, t.question)) for t in tr[:2]], batch_first=True
    )
    states, mask = fresh.encode_passages(held[:2])
    copy = fresh.stack_copy(fresh.copy_inputs(held[:2]))
    before = fresh.loss(states, mask, copy, batch).item()
    hist = train_e5_generator(fresh, tr, held, held, _four_steps(tmp_path / "ptr"))
    assert [h["step"] for h in hist] == [2, 4]
    again = E5QuestionGenerator.load(tmp_path / "ptr" / "last", encoder=enc)
    assert again.config.copy_pointer and torch.equal(again.ptr_k.weight, fresh.ptr_k.weight)
    assert again.eval().loss(states, mask, copy, batch).item() < before  # it learns
    out = again.generate(held[:2], "de", 2, max_new_tokens=6, seed=3)
    assert out == again.generate(held[:2], "de", 2, max_new_tokens=6, seed=3) and len(out[0]) == 2
    gate = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc)
    with pytest.raises(ValueError, match=r"xqg_generator.json: copy_pointer differ"):
        gate.load_decoder(tmp_path / "ptr" / "last")


def test_e5_restricted_vocabulary_draws_only_the_languages_pieces_and_what_it_copies(
    small_texts, mlqa, tmp_path
):
    """restrict_vocabulary: a language's scores are -inf exactly outside its training questions'
    pieces (plus EOS, plus the passage's pieces the copy mechanism gives); a language without
    training questions stays unrestricted; the restriction is saved and is no weight."""
    enc, tr, texts, held = _tiny_e5_world(small_texts, mlqa)
    de_pieces = {
        i
        for t in tr
        if t.language == "de"
        for i in enc.tokenizer(t.question, add_special_tokens=False)["input_ids"]
    }
    for pointer in (False, True):
        gen = build_generator(
            "tiny", ["de", "zh"], texts, n_layers=1, encoder=enc, copy_pointer=pointer
        ).eval()
        gen.restrict_vocabulary([t for t in tr if t.language == "de"])
        assert gen.allowed_pieces("zh") is None  # no Chinese question: no restriction
        allowed = gen.allowed_pieces("de")
        want = {int(gen.reduced_of_full[i]) for i in de_pieces} - {UNK} | {EOS}  # unknowns stay out
        assert set(torch.nonzero(allowed)[:, 0].tolist()) == want
        states, mask = gen.encode_passages(held[:2])
        copy = gen.stack_copy(gen.copy_inputs(held[:2]))
        tgt = torch.tensor([gen.target_ids("de", "Wer war das?")] * 2)
        free, _ = gen.logits(tgt[:, :-1], states, mask, copy)
        scores, _ = gen.logits(tgt[:, :-1], states, mask, copy, allowed=allowed)
        probs = scores.softmax(-1)
        for row in range(2):
            copied = torch.isin(torch.arange(gen.vocab_size), copy[row]) if pointer else copy[row] > 0
            possible = allowed | copied
            assert (probs[row, 0][~possible] < 1e-9).all()
            assert (probs[row, 0][allowed] > 0).all()  # every allowed piece stays possible
        assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[:2]), atol=1e-5)
        if not pointer:  # the gate's logits are unchanged where they are kept
            kept = ~torch.isinf(scores)
            assert torch.equal(scores[kept], free[kept]) and kept.sum() < free.numel()
        gen.save(tmp_path / f"r{pointer}")
        again = E5QuestionGenerator.load(tmp_path / f"r{pointer}", encoder=enc)
        assert again.config.language_pieces == gen.config.language_pieces
        plain = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc, copy_pointer=pointer)
        plain.load_decoder(tmp_path / f"r{pointer}")  # a setting of sampling, not of the weights
        assert plain.allowed_pieces("de") is None
        assert again.generate(held[:2], "zh", 2, max_new_tokens=6, seed=1) == plain.generate(
            held[:2], "zh", 2, max_new_tokens=6, seed=1
        )


def test_e5_restricted_pointer_samples_score_only_the_pieces_they_can_draw(small_texts, mlqa):
    """A restricted pointer generator scores only the specials, the language's pieces and the
    passages' pieces (`sampling_columns`): its samples are those of scoring the whole vocabulary
    and masking the rest, seed for seed, with and without the script budget; an unrestricted
    language and the gate score the whole vocabulary."""
    enc, tr, texts, held = _tiny_e5_world(small_texts, mlqa)
    gen = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc, copy_pointer=True).eval()
    gen.restrict_vocabulary([t for t in tr if t.language == "de"])
    states, mask = gen.encode_passages(held)
    copy = gen.stack_copy(gen.copy_inputs(held))
    allowed = gen.allowed_pieces("de")
    columns = gen.sampling_columns(allowed, copy)
    n_special = 3 + len(gen.languages)
    assert columns[:n_special].tolist() == list(range(n_special))  # the specials keep their ids
    want = set(torch.nonzero(allowed)[:, 0].tolist()) | set(copy.flatten().tolist()) | set(range(n_special))
    assert columns.tolist() == sorted(want) and len(columns) < gen.vocab_size
    assert gen.sampling_columns(gen.allowed_pieces("zh"), copy) is None  # zh is unrestricted
    gate = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc)
    assert gate.sampling_columns(allowed, copy) is None
    with torch.no_grad():  # a trained-like decoder: sharp scores, the switch half on
        gen.out_bias.normal_(0, 3, generator=torch.Generator().manual_seed(1))
        gen.copy.bias.fill_(0.0)
    for budget in (False, True):
        gen.config.script_budget = budget
        draws = {}
        for scored in ("columns", "whole vocabulary"):
            gen.score_every_piece = scored == "whole vocabulary"
            seed = torch.Generator().manual_seed(5)
            draws[scored] = gen.sample_ids(states, mask, copy, "de", 4, 10, 8, seed)
        assert gen.sampling_columns(allowed, copy) is None  # the switch is still on
        gen.score_every_piece = False
        assert torch.equal(draws["columns"], draws["whole vocabulary"])
        drawn = set(draws["columns"].flatten().tolist()) - {PAD, EOS}
        assert drawn and drawn <= want  # ids of the whole vocabulary, among the drawable ones


def test_e5_generators_share_the_frozen_encoders_work(small_texts, mlqa, tmp_path):
    """Generators trained on one `TrainingEncodings` train as with encodings of their own (the
    same history and weights); the encodings are made once, refuse a generator of another
    vocabulary and name what they lack."""
    enc, tr, texts, held = _tiny_e5_world(small_texts, mlqa)

    def fresh(vocabulary=texts):
        return build_generator("tiny", ["de", "zh"], vocabulary, n_layers=1, encoder=enc, copy_pointer=True)

    alone, shared = fresh(), fresh()
    own = train_e5_generator(alone, tr, held, held, _four_steps(tmp_path / "alone"))
    encodings = TrainingEncodings(training_passages(tr, held), held)
    seen = [t for t in tr if t.language == "de"]
    first = train_e5_generator(fresh(), seen, held, held, _four_steps(tmp_path / "de"), encodings=encodings)
    made = encodings.for_model(alone)  # already made: the first generator's, not remade
    again = train_e5_generator(shared, tr, held, held, _four_steps(tmp_path / "shared"), encodings=encodings)
    assert encodings.for_model(alone) is made and len(first) == 2
    assert again == own
    assert all(torch.equal(a, b) for a, b in zip(alone.state_dict().values(), shared.state_dict().values()))
    with pytest.raises(ValueError, match="another encoder, vocabulary"):
        encodings.for_model(fresh(texts[: len(texts) // 2]))
    few = TrainingEncodings(held[:2], held)
    with pytest.raises(ValueError, match=r"lack \d+ training or held-out passages"):
        train_e5_generator(fresh(), tr, held, held, _four_steps(tmp_path / "few"), encodings=few)


def _budget_breaks(seqs: torch.Tensor, own: torch.Tensor, other: torch.Tensor) -> int:
    """Pieces with letters of another script written after the first while the sample had no more
    letters in its own script than in others (the script budget's rule, replayed on the ids)."""
    breaks = 0
    for row in seqs.tolist():
        own_n = other_n = 0.0
        for t, piece in enumerate(row):
            if piece in (EOS, PAD):
                break
            breaks += t > 0 and other[piece] > 0 and other_n >= own_n
            own_n, other_n = own_n + own[piece].item(), other_n + other[piece].item()
    return breaks


def test_e5_sampling_writes_a_piece_before_eos_and_keeps_the_script_budget(small_texts, mlqa, tmp_path):
    """No sample is empty, even when EOS is by far the likeliest first piece. With script_budget,
    a piece with letters of another script follows the first only while the sample has more
    letters in its language's script than in others; without it, an untrained decoder pushed
    towards Latin pieces breaks that rule. The budget is saved and is no weight."""
    enc, tr, texts, held = _tiny_e5_world(small_texts, mlqa)
    tok = enc.tokenizer
    for pointer in (False, True):
        gen = build_generator(
            "tiny", ["de", "zh"], texts, n_layers=1, encoder=enc, copy_pointer=pointer
        ).eval()
        own, other = gen.script_letters("zh")
        for piece, counts in (("人", (1, 0)), ("▁the", (0, 3)), ("?", (0, 0))):
            reduced = int(gen.reduced_of_full[tok.convert_tokens_to_ids(piece)])
            assert reduced != UNK and (own[reduced].item(), other[reduced].item()) == counts
        the = int(gen.reduced_of_full[tok.convert_tokens_to_ids("▁the")])
        assert gen.script_letters("de")[0][the] == 3 and other[[PAD, EOS, UNK]].sum() == 0  # Latin's own
        states, mask = gen.encode_passages(held)
        copy = gen.stack_copy(gen.copy_inputs(held))
        with torch.no_grad():
            gen.out_bias[EOS] = 50.0
            gen.copy.bias.fill_(-50.0)  # the pointer's switch off; the gate's bonus negative
        ids = gen.sample_ids(states, mask, copy, "zh", 3, 10, 6, torch.Generator().manual_seed(0))
        assert (ids[:, 0] != EOS).all() and (ids[:, 1] == EOS).all()  # one piece, then EOS
        with torch.no_grad():
            gen.out_bias.zero_()
            gen.out_bias[other > 0] = 4.0  # pieces with Latin letters likelier
            gen.copy.bias.zero_()
        draws = [
            gen.sample_ids(states, mask, copy, "zh", 8, 50, 10, torch.Generator().manual_seed(0))
            for gen.config.script_budget in (False, True)
        ]
        assert _budget_breaks(draws[0], own, other) > 10
        assert _budget_breaks(draws[1], own, other) == 0
        assert (other[draws[1][:, 0]] > 0).any()  # the first piece is free
        gen.save(tmp_path / f"b{pointer}")
        assert E5QuestionGenerator.load(tmp_path / f"b{pointer}", encoder=enc).config.script_budget
        plain = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc, copy_pointer=pointer)
        plain.load_decoder(tmp_path / f"b{pointer}")  # a setting of sampling, not of the weights
        assert not plain.config.script_budget


def test_e5_generator_selection_in_language_counts_only_questions_in_language(
    small_texts, mlqa, tmp_path, monkeypatch
):
    """select "round-trip in language": with no question in its language no later checkpoint can
    beat the first, so `best` holds the weights of the first evaluation."""
    from xqg.generation import train_e5

    monkeypatch.setattr(train_e5, "in_language", lambda text, language: False)
    enc, tr, texts, held = _tiny_e5_world(small_texts, mlqa)
    gen = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc)
    at: dict[int, dict] = {}

    def keep(step: int) -> None:
        at[step] = {k: v.clone() for k, v in gen.state_dict().items() if not k.startswith("encoder.")}

    args = _four_steps(tmp_path / "g", select="round-trip in language")
    hist = train_e5_generator(gen, tr, held, held, args, on_evaluation=keep)
    assert [h["mean in language"] for h in hist] == [0.0, 0.0] and hist[-1]["in language"] == 0.0
    best = torch.load(tmp_path / "g" / "best" / "decoder.pt")
    assert all(torch.equal(best[k], at[2][k]) for k in at[2])
    assert not all(torch.equal(best[k], at[4][k]) for k in at[4])
    with pytest.raises(ValueError, match="select 'newest'"):
        train_e5_generator(gen, tr, held, held, GeneratorTrainingArgs(str(tmp_path / "h"), select="newest"))


def test_passage_word_share_counts_long_words_found_in_the_passage():
    passage = "Pappataci fever is prevalent in the subtropical zone"
    assert passage_word_share("Wann wurde PAPPATACI entdeckt?", passage) == 0.25  # 1 of 4 long words
    assert passage_word_share("Was ist die zone?", passage) == 1.0  # "zone" is its one long word
    assert passage_word_share("Was ist die zone?", passage, min_letters=3) == 0.25  # 1 of 4
    assert passage_word_share("是什么?", passage) == 0.0 and passage_word_share("", passage) == 0.0


class _Killed(Exception):
    pass


class _FakeGenerator:
    """Deterministic texts from the seed; can 'die' after some calls."""

    def __init__(self, die_after=None):
        self.calls, self.die_after = 0, die_after

    def generate(self, passages, language, n, *, top_k, max_new_tokens, seed):
        self.calls += 1
        if self.die_after is not None and self.calls > self.die_after:
            raise _Killed
        rng = np.random.default_rng(seed)
        return [[f"{language}-{p.id}-{rng.integers(1000)}" for _ in range(n)] for p in passages]


def test_generation_resumes_after_a_kill_without_duplicates(tmp_path):
    passages = [Passage(f"p{i}", "t", f"text {i}") for i in range(10)]
    ref = generate_collection(
        _FakeGenerator(), passages, ["de", "zh"], 3, tmp_path / "ref.jsonl", batch_size=4
    )
    out = tmp_path / "gen.jsonl"
    with pytest.raises(_Killed):
        generate_collection(_FakeGenerator(die_after=2), passages, ["de", "zh"], 3, out, batch_size=4)
    with open(out, "a") as f:
        f.write('{"passage_id": "p8", "language": "de", "sam')  # a torn line, as a kill leaves
    generate_collection(_FakeGenerator(), passages, ["de", "zh"], 3, out, batch_size=4)
    got, want = load_generated(out), load_generated(ref)
    key = lambda r: (r["language"], r["passage_id"], r["sample"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)
    assert len(got) == 10 * 2 * 3 == len({key(r) for r in got})


def test_generation_shards_cover_the_collection(tmp_path):
    passages = [Passage(f"p{i}", "t", f"text {i}") for i in range(7)]
    for shard in range(3):
        generate_collection(
            _FakeGenerator(),
            passages,
            ["de"],
            2,
            tmp_path / f"s{shard}.jsonl",
            shard=shard,
            num_shards=3,
            batch_size=2,
        )
    seen = [r["passage_id"] for s in range(3) for r in load_generated(tmp_path / f"s{s}.jsonl")]
    assert sorted(set(seen)) == sorted(p.id for p in passages) and len(seen) == 14


def test_triples_link_english_passages(mlqa):
    tr = triples(mlqa, ["hi"])
    assert len(tr) == 507 and all(isinstance(t, Triple) and t.language == "hi" for t in tr)
    # each Hindi question is paired with the English passage (and title) it was asked about
    hindi = {q.id: q for q in mlqa.queries if q.language == "hi"}
    assert sorted(t.question for t in tr) == sorted(q.text for q in hindi.values())
    for t in tr:
        gold = mlqa.passages[t.passage_id]
        assert (t.passage, t.title) == (gold.text, gold.title)
    assert {t.passage_id for t in tr} == {q.gold_passage for q in hindi.values()}
