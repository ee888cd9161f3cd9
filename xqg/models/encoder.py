"""A bi-encoder over any Hugging Face encoder, with its family's pooling, normalisation and prefixes.

The behaviour travels with the checkpoint: ``xqg_encoder.json`` in the model folder records
pooling (``cls`` or ``mean``), L2 normalisation and the query/passage prefixes, so a saved or
fine-tuned model reloads exactly as it was trained. Without that file the family is guessed
from the name: e5 models use mean pooling, normalisation and ``query: `` / ``passage: ``;
mBERT and XLM-R trained with Tevatron use the CLS vector and a dot product.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from xqg.models.device import device_of
from xqg.models.precision import autocast

SPEC_FILE = "xqg_encoder.json"
WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


@dataclass
class EncoderSpec:
    """How a checkpoint turns token states into a text embedding."""

    pooling: str = "cls"  # "cls" or "mean"
    normalize: bool = False  # L2-normalise embeddings (cosine similarity)
    query_prefix: str = ""
    passage_prefix: str = ""

    def __post_init__(self) -> None:
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {self.pooling!r}")

    @classmethod
    def for_model(cls, name_or_path: str) -> EncoderSpec:
        """Read the spec saved with a checkpoint, or infer it from the model family."""
        spec_file = Path(name_or_path) / SPEC_FILE
        if spec_file.exists():
            return cls(**json.loads(spec_file.read_text()))
        if "e5" in Path(name_or_path).name.lower():
            return cls("mean", True, "query: ", "passage: ")
        return cls()


def check_model_folder(path: Path) -> None:
    """A local model folder must hold a config and weights; say which is missing."""
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: model folder has no config.json")
    if not any((path / f).exists() for f in WEIGHT_FILES):
        raise FileNotFoundError(f"{path}: model folder has no weights ({' or '.join(WEIGHT_FILES[:2])})")


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """CLS vector or attention-masked mean of the last hidden states."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class Encoder(torch.nn.Module):
    """Shared query/passage encoder (one set of weights, as the paper's xDR)."""

    def __init__(self, model: torch.nn.Module, tokenizer, spec: EncoderSpec):
        super().__init__()
        self.model, self.tokenizer, self.spec = model, tokenizer, spec

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, spec: EncoderSpec | None = None) -> Encoder:
        """Load by Hugging Face name or local path, with the family's pooling and prefixes."""
        from transformers import AutoModel, AutoTokenizer

        name_or_path = str(name_or_path)
        if Path(name_or_path).is_dir():
            check_model_folder(Path(name_or_path))
        model = AutoModel.from_pretrained(name_or_path, add_pooling_layer=False)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        return cls(model, tokenizer, spec or EncoderSpec.for_model(name_or_path))

    def save(self, out_dir: str | Path) -> None:
        """Save weights, tokenizer and spec so that `from_pretrained` restores the same encoder."""
        out_dir = Path(out_dir)
        self.model.save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)
        (out_dir / SPEC_FILE).write_text(json.dumps(asdict(self.spec), indent=1))

    def prefix(self, texts: Sequence[str], kind: str) -> list[str]:
        """Prepend the family's query or passage prefix."""
        if kind not in ("query", "passage"):
            raise ValueError(f"kind must be 'query' or 'passage', got {kind!r}")
        pre = self.spec.query_prefix if kind == "query" else self.spec.passage_prefix
        return [pre + t for t in texts]

    def tokenize(self, texts: Sequence[str], kind: str, max_length: int) -> dict:
        """Tokenise with prefixes, truncation and padding to the longest text."""
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"{kind} text {i} is empty")
        return self.tokenizer(
            self.prefix(texts, kind),
            max_length=max_length,
            truncation=True,
            padding=True,
            return_tensors="pt",
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Embeddings of a tokenised batch (with gradients when training)."""
        device = device_of(self.model)  # the batch follows the weights (CPU here, CUDA on GPUs)
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        emb = pool(hidden, attention_mask, self.spec.pooling)
        return torch.nn.functional.normalize(emb, dim=-1) if self.spec.normalize else emb

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        kind: str,
        max_length: int = 128,
        batch_size: int = 64,
        dtype: str = "float32",
        progress: bool = True,
    ) -> np.ndarray:
        """Embed texts in length-sorted batches (little padding); rows follow the input order.

        `dtype="bfloat16"` runs the forward under autocast on the model's device (fast on CPUs
        with AVX-512 bf16 and on GPUs); embeddings are returned as float32 either way.
        """
        if not texts:
            raise ValueError(f"no {kind} texts to encode")
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"{kind} text {i} is empty")
        self.model.eval()
        enc = self.tokenizer(self.prefix(texts, kind), max_length=max_length, truncation=True)
        ids = enc["input_ids"]
        order = np.argsort([-len(x) for x in ids], kind="stable")
        out = np.empty((len(texts), self.model.config.hidden_size), np.float32)
        starts = range(0, len(order), batch_size)
        for s in tqdm(starts, desc=f"encode {kind}s", disable=not progress, leave=False):
            rows = order[s : s + batch_size]
            batch = self.tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
            with autocast(dtype, device_of(self.model).type):
                emb = self.forward(batch["input_ids"], batch["attention_mask"])
            out[rows] = emb.float().cpu().numpy()
        return out
