"""Tiny randomly initialised models with tokenizers trained on the fly (the `smoke` profile).

They run every code path of the study in seconds: BERT and XLM-R encoder configs, and an mT5
generator with a SentencePiece-style Unigram tokenizer, all built from a handful of texts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from xqg.models.encoder import Encoder, EncoderSpec

TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=256,
)


def train_bpe_tokenizer(texts: Iterable[str], specials: list[str], vocab_size: int = 800):
    """A Metaspace + BPE fast tokenizer trained on `texts`.

    BPE rather than Unigram: the `tokenizers` Unigram trainer is not deterministic between
    runs, and a smoke run must give the same numbers twice.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(list(texts), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials))
    return tok


def train_sentencepiece(texts: Iterable[str], out_dir: Path, vocab_size: int = 1000) -> Path:
    """A SentencePiece Unigram model in mT5's layout (pad 0, eos 1, unk 2), single-threaded
    so that it is deterministic."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "corpus.txt"
    corpus.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf-8")
    prefix = out_dir / "spiece"
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        num_threads=1,
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    corpus.unlink()
    return prefix.with_suffix(".model")


def _wrap(tok, **special):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=TINY["max_position_embeddings"], **special
    )


def tiny_encoder(texts: Iterable[str], family: str = "xlm-roberta", seed: int = 0) -> Encoder:
    """A tiny random BERT- or XLM-R-style encoder (CLS pooling, dot product, like mBERT/XLM-R)."""
    from tokenizers import processors
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(seed)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = train_bpe_tokenizer(texts, specials)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    hf_tok = _wrap(
        tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
    )
    if family == "bert":
        model = BertModel(BertConfig(vocab_size=len(hf_tok), pad_token_id=1, **TINY), add_pooling_layer=False)
    elif family == "xlm-roberta":
        # XLM-R positions start after the padding index, hence two extra positions.
        sizes = {**TINY, "max_position_embeddings": TINY["max_position_embeddings"] + 2}
        cfg = XLMRobertaConfig(vocab_size=len(hf_tok), pad_token_id=1, **sizes)
        model = XLMRobertaModel(cfg, add_pooling_layer=False)
    else:
        raise ValueError(f"unknown tiny encoder family {family!r}; use 'bert' or 'xlm-roberta'")
    return Encoder(model, hf_tok, EncoderSpec(pooling="cls"))


def tiny_mt5(texts: Iterable[str], out_dir: str | Path, seed: int = 0):
    """A tiny random `MT5ForConditionalGeneration` with a SentencePiece tokenizer, saved to `out_dir`."""
    from transformers import MT5Config, MT5ForConditionalGeneration, T5Tokenizer

    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    import sentencepiece as spm
    from tokenizers import normalizers

    sp = spm.SentencePieceProcessor(model_file=str(train_sentencepiece(texts, out_dir / "spm")))
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    hf_tok = T5Tokenizer(vocab=vocab, extra_ids=0)
    hf_tok.backend_tokenizer.normalizer = normalizers.NFKC()
    cfg = MT5Config(
        vocab_size=len(hf_tok),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    model = MT5ForConditionalGeneration(cfg)
    model.save_pretrained(out_dir)
    hf_tok.save_pretrained(out_dir)
    return model, hf_tok
