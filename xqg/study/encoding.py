"""`EmbeddingCache`: the encodings one step needs, computed once, kept on disk and in memory.

One cache object lives for one step run (the notebooks make a new one each time), so nothing
is shared through module state. It holds one encoder in memory at a time, the collection as read
once, and the generated-query embeddings per file version; on disk every embedding file sits
under ``ws.embeddings_dir(encoder, training, dtype)`` with its ids and its recipe
(`xqg.study.provenance`: the encoding code, lengths and dtype, the encoder's identity, a trained
one's recipe key included, and the texts' source), and is reused only when both match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from xqg.data.schema import Benchmark, Passage, Query
from xqg.generation.run import load_generated
from xqg.models.encoder import Encoder
from xqg.retrieval.augment import GeneratedEmbeddings, augment
from xqg.retrieval.dense import dense_retrieve, encode_passages, evaluate_run
from xqg.retrieval.embeddings import load_embeddings, save_embeddings
from xqg.study.named_models import encoder_identity, load_encoder
from xqg.study.provenance import Recipe, claim, code_version, key_of
from xqg.study.systems import System
from xqg.study.workspace import Workspace, file_tag

ENCODE_DTYPES = ("float32", "bfloat16")
Run = dict[str, list[tuple[str, float]]]


@dataclass
class EmbeddingCache:
    """Cached passage, query and generated-query embeddings of one workspace.

    `dtype` is the encoding precision (bfloat16 runs under CPU autocast; see
    ``python -m xqg.benchmarks.encode``); it is part of every cache path."""

    ws: Workspace
    dtype: str = "float32"
    passage_max_len: int = 256
    query_max_len: int = 64
    _encoder: tuple[str, Encoder] | None = field(default=None, repr=False)
    _collection: dict[str, Passage] | None = field(default=None, repr=False)
    _generated: dict[tuple[str, str, str], GeneratedEmbeddings] = field(default_factory=dict, repr=False)
    _code: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.dtype not in ENCODE_DTYPES:
            raise ValueError(f"encode_dtype must be one of {ENCODE_DTYPES}, got {self.dtype!r}")

    @property
    def collection(self) -> dict[str, Passage]:
        """The prepared collection, read once."""
        if self._collection is None:
            self._collection = self.ws.passages()
        return self._collection

    def encoder(self, encoder: str, training: str) -> Encoder:
        """The encoder of a training regime (one in memory at a time)."""
        source = self.ws.encoder_source(encoder, training)
        if self._encoder is None or self._encoder[0] != source:
            self._encoder = None  # free the previous model first
            self._encoder = (source, load_encoder(source, self.ws))
        return self._encoder[1]

    def _dir(self, encoder: str, training: str):
        return self.ws.embeddings_dir(encoder, training, self.dtype)

    def _claim(self, path, encoder: str, training: str, max_length: int, texts: dict[str, str]) -> None:
        """Keep the embedding file at `path` only if this encoder and these settings made it from
        the texts named by `texts` ({what: its recipe key or hash})."""
        if not self._code:
            self._code = code_version("xqg.models.encoder", "xqg.study.named_models", "xqg.retrieval.dense")
        source = self.ws.encoder_source(encoder, training)
        trained = source == str(self.ws.retriever_checkpoint)
        if trained:
            identity = key_of(self.ws.retriever_dir, "04_train_retriever")
        else:
            identity = encoder_identity(source, self.ws)
        params = {"training": training, "dtype": self.dtype, "max_length": max_length}
        claim(path, Recipe(self._code, params, {"encoder": identity, **texts}))

    def passages(self, encoder: str, training: str = "zero-shot") -> tuple[list[str], np.ndarray]:
        """Collection embeddings, computed once per encoder and cached with their ids."""
        path = self._dir(encoder, training) / "passages.npz"
        self._claim(path, encoder, training, self.passage_max_len, {"data": key_of(self.ws.data, "01_data")})
        return encode_passages(
            lambda: self.encoder(encoder, training),
            self.collection,
            path,
            self.passage_max_len,
            dtype=self.dtype,
        )

    def queries(
        self, encoder: str, queries: Sequence[Query], name: str, training: str = "zero-shot"
    ) -> np.ndarray:
        """Embeddings of a query set, cached by name and the texts' hash, checked against the ids."""
        digest = hashlib.sha1("\n".join(q.text for q in queries).encode()).hexdigest()[:10]
        path = self._dir(encoder, training) / f"queries-{file_tag(name)}-{digest}.npz"
        ids = [q.id for q in queries]
        self._claim(path, encoder, training, self.query_max_len, {"texts": digest})
        if path.exists():
            got, emb = load_embeddings(path)
            if got == ids:
                return emb
        emb = self.encoder(encoder, training).encode(
            [q.text for q in queries],
            "query",
            max_length=self.query_max_len,
            batch_size=128,
            dtype=self.dtype,
        )
        save_embeddings(path, ids, emb)
        return emb

    def generated(
        self, encoder: str, training: str = "zero-shot", variant: str = "full"
    ) -> GeneratedEmbeddings:
        """Embeddings of one generator variant's queries (an empty generation is embedded as "?")."""
        key = (encoder, training, variant)
        if key in self._generated:
            return self._generated[key]
        source = self.ws.generated_queries(variant)
        records = load_generated(source)
        ids = [f"{r['passage_id']}|{r['language']}|{r['sample']}" for r in records]
        path = self._dir(encoder, training) / source.with_suffix(".npz").name.replace("queries", "generated")
        made_from = {"queries": key_of(source, "03_generate")}
        self._claim(path, encoder, training, self.query_max_len, made_from)
        emb = None
        if path.exists():
            got, cached = load_embeddings(path)
            emb = cached if got == ids else None
        if emb is None:
            texts = [r["text"] if r["text"].strip() else "?" for r in records]
            emb = self.encoder(encoder, training).encode(
                texts, "query", max_length=self.query_max_len, batch_size=128, dtype=self.dtype
            )
            save_embeddings(path, ids, emb)
        self._generated[key] = GeneratedEmbeddings(
            [r["passage_id"] for r in records],
            [r["language"] for r in records],
            np.array([r["sample"] for r in records]),
            emb,
        )
        return self._generated[key]

    def system_passages(self, system: System) -> tuple[list[str], np.ndarray]:
        """The passage ids and (augmented, for xQG) embeddings a system searches."""
        pids, pemb = self.passages(system.encoder, system.training)
        if system.xqg:
            gen = self.generated(system.encoder, system.training, system.generator)
            langs = system.gen_languages.split("+") if system.gen_languages else None
            pemb = augment(pids, pemb, gen.select(system.n_queries, langs), system.alpha, system.mode)
        return pids, pemb

    def run(
        self,
        system: System,
        queries: Sequence[Query],
        query_name: str,
        k: int = 100,
        query_emb: np.ndarray | None = None,
    ) -> Run:
        """A system's ranking (top k) of one query set."""
        pids, pemb = self.system_passages(system)
        if query_emb is None:
            query_emb = self.queries(system.encoder, queries, query_name, system.training)
        return dense_retrieve(pids, pemb, queries, query_emb, k)

    def score_run(
        self, queries: Sequence[Query], run: Run, measures: Sequence[str], budgets: Sequence[int]
    ) -> dict[str, dict[str, float]]:
        """Per-query retrieval metrics of a run over the prepared collection."""
        bench = Benchmark("eval", "prepared", self.collection, list(queries))
        return evaluate_run(bench, queries, run, measures, budgets)

    def score(
        self,
        system: System,
        queries: Sequence[Query],
        query_name: str,
        measures: Sequence[str],
        budgets: Sequence[int],
    ) -> dict[str, dict[str, float]]:
        """Per-query metrics of one system on one query set."""
        return self.score_run(queries, self.run(system, queries, query_name), measures, budgets)
