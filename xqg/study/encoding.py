"""`EmbeddingCache`: the encodings one step needs, computed once, kept on disk and in memory.

One cache object lives for one step run (the notebooks make a new one each time), so nothing
is shared through module state. It holds one encoder in memory at a time, the collection as read
once, and the running sums of the generated queries' embeddings (never one vector per query:
`xqg.retrieval.query_sums`); on disk every embedding file sits
under ``ws.embeddings_dir(encoder, training, dtype)`` with its ids and its recipe
(`xqg.study.provenance`: the encoding code, lengths and dtype, the encoder's identity, a trained
one's recipe key included, and the texts' source), and is reused only when both match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xqg.data.schema import Benchmark, Passage, Query
from xqg.io import iter_jsonl
from xqg.models.encoder import Encoder
from xqg.retrieval.dense import dense_retrieve, encode_passages, evaluate_run
from xqg.retrieval.embeddings import load_embeddings, save_embeddings
from xqg.retrieval.query_sums import QuerySums, SumGroup, augment_with_sums, build_query_sums
from xqg.retrieval.routing import split_mode
from xqg.retrieval.search import SEARCH_BLOCK
from xqg.study.named_models import encoder_identity, load_encoder
from xqg.study.provenance import Recipe, claim, code_version, key_of, params_of
from xqg.study.systems import System, seen_languages
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
    sums_dtype: str = "float64"  # of the query sums: float64 reproduces in-memory augmentation exactly
    chunk_size: int = 1 << 15  # generated queries encoded and folded at a time
    _sums: dict[tuple[str, str, str], QuerySums] = field(default_factory=dict, repr=False)
    _code: str = field(default="", repr=False)
    routed_sums: bool = False  # also one sum per passage and language (the routed modes need them)
    device: str = "auto"  # where the encoders run (resolve_device)
    search_block: int = SEARCH_BLOCK  # passages augmented and searched at a time (a multiple of 1,024)

    @classmethod
    def for_step(cls, ws: Workspace, config: Any) -> EmbeddingCache:
        """The cache with a step's encoding settings (``encode_dtype``, ``encode_passage_len``,
        ``encode_query_len``, ``sums_dtype``, ``routed_sums``)."""
        return cls(
            ws,
            config.encode_dtype,
            passage_max_len=config.encode_passage_len,
            query_max_len=config.encode_query_len,
            sums_dtype=config.sums_dtype,
            routed_sums=config.routed_sums,
            device=config.device,
        )

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
            self._encoder = (source, load_encoder(source, self.ws, self.device))
        return self._encoder[1]

    def _dir(self, encoder: str, training: str):
        return self.ws.embeddings_dir(encoder, training, self.dtype)

    def _claim(
        self,
        path,
        encoder: str,
        training: str,
        max_length: int,
        texts: dict[str, str],
        settings: dict | None = None,
    ) -> None:
        """Keep the embedding file (or folder) at `path` only if this encoder and these settings
        made it from the texts named by `texts` ({what: its recipe key or hash})."""
        if not self._code:
            self._code = code_version("xqg.models.encoder", "xqg.study.named_models", "xqg.retrieval.dense")
        source = self.ws.encoder_source(encoder, training)
        trained = source == str(self.ws.retriever_checkpoint)
        if trained:
            identity = key_of(self.ws.retriever_dir, "04_train_retriever")
        else:
            identity = encoder_identity(source, self.ws)
        params = {"training": training, "dtype": self.dtype, "max_length": max_length, **(settings or {})}
        claim(path, Recipe(self._code, params, {"encoder": identity, **texts}))

    def passages(
        self, encoder: str, training: str = "zero-shot", passage_format: str = "title+text"
    ) -> tuple[list[str], np.ndarray]:
        """Collection embeddings, computed once per encoder and passage format (`passage_text`)
        and cached with their ids."""
        name = (
            "passages.npz" if passage_format == "title+text" else f"passages-{file_tag(passage_format)}.npz"
        )
        path = self._dir(encoder, training) / name
        self._claim(
            path,
            encoder,
            training,
            self.passage_max_len,
            {"data": key_of(self.ws.data, "01_data")},
            {"passage_format": passage_format},
        )
        return encode_passages(
            lambda: self.encoder(encoder, training),
            self.collection,
            path,
            self.passage_max_len,
            dtype=self.dtype,
            passage_format=passage_format,
        )

    def other_passages(
        self, encoder: str, passages: dict[str, Passage], name: str, training: str = "zero-shot"
    ) -> tuple[list[str], np.ndarray]:
        """Embeddings of a collection other than the evaluation one (the ceiling collection),
        cached by name and the hash of its ids and texts."""
        digest = hashlib.sha1("".join(f"{p.id}\t{p.title}\t{p.text}\n" for p in passages.values()).encode())
        path = self._dir(encoder, training) / f"passages-{file_tag(name)}.npz"
        self._claim(path, encoder, training, self.passage_max_len, {"texts": digest.hexdigest()[:10]})
        return encode_passages(
            lambda: self.encoder(encoder, training), passages, path, self.passage_max_len, dtype=self.dtype
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
        emb = self.encode_queries(encoder, training, [q.text for q in queries])
        save_embeddings(path, ids, emb)
        return emb

    def query_sums(
        self,
        encoder: str,
        training: str = "zero-shot",
        variant: str = "full",
        on_chunk: Callable[[list[dict], np.ndarray], None] | None = None,
    ) -> QuerySums:
        """Running sums of one generator variant's query embeddings (`xqg.retrieval.query_sums`):
        all languages at n = 1..N (N: what step 03 generated) and, for RQ1, the seen-only
        generator's languages at N; built by streaming the queries once (`on_chunk` sees them as
        they are encoded), then reused from disk."""
        key = (encoder, training, variant)
        if key in self._sums:
            return self._sums[key]
        source = self.ws.generated_queries(variant)
        made = params_of(source, "03_generate")
        n, languages = made["n_queries"], list(made["generator_languages"])
        seen = seen_languages(self.ws)
        ns = tuple(range(1, n + 1))
        groups = [SumGroup(None, ns)]
        if self.routed_sums:  # one index per language: sums of that language's queries alone
            groups += [SumGroup((lang,), ns) for lang in languages]
        if seen and not (self.routed_sums and len(seen) == 1):  # else a language's group holds it
            groups.append(SumGroup(tuple(seen), (n,)))
        path = self._dir(encoder, training) / f"sums{'' if variant == 'full' else '-' + variant}"
        settings = {
            "groups": [g.name for g in groups],
            "sums_dtype": self.sums_dtype,
            "chunk": self.chunk_size,
        }
        self._claim(
            path, encoder, training, self.query_max_len, {"queries": key_of(source, "03_generate")}, settings
        )
        pids = list(self.collection)
        if not (path / "meta.json").exists():
            model = self.encoder(encoder, training)
            build_query_sums(
                iter_jsonl(source),
                pids,
                lambda texts: self.encode_queries(encoder, training, texts),
                groups,
                path,
                languages=languages,
                dim=model.model.config.hidden_size,
                dtype=self.sums_dtype,
                chunk_size=self.chunk_size,
                on_chunk=on_chunk,
            )
        sums = QuerySums(path)
        sums.check_passages(pids)
        self._sums[key] = sums
        return sums

    def encode_queries(self, encoder: str, training: str, texts: list[str]) -> np.ndarray:
        """Query embeddings with this cache's settings (not cached)."""
        return self.encoder(encoder, training).encode(
            texts, "query", max_length=self.query_max_len, batch_size=128, dtype=self.dtype
        )

    def encode_generated(
        self, encoder: str, records: Sequence[dict], training: str = "zero-shot"
    ) -> np.ndarray:
        """Embeddings of some generated queries, not cached (an empty one is encoded as "?")."""
        return self.encode_queries(
            encoder, training, [r["text"] if r["text"].strip() else "?" for r in records]
        )

    def system_blocks(
        self, system: System, language: str | None = None
    ) -> tuple[list[str], Iterator[np.ndarray]]:
        """The passage ids and (augmented, for xQG) embeddings a system searches, as consecutive
        blocks of `search_block` rows read from the memory-mapped passages and sums (alpha
        applied per block: memory is one block, not the collection); for a routed mode, the
        index of the queries in `language`: passages augmented with that language's queries
        alone, or the folded index when the system has none in it (English, an unseen
        language)."""
        pids, pemb = self.passages(system.encoder, system.training, system.passage_format)
        spans = range(0, len(pids), self.search_block)
        if not system.xqg:
            return pids, (np.array(pemb[s : s + self.search_block], np.float32) for s in spans)
        routed, fold = split_mode(system.mode)
        sums = self.query_sums(system.encoder, system.training, system.generator)
        langs = system.gen_languages.split("+") if system.gen_languages else None
        if routed and language in sums.languages and (langs is None or language in langs):
            langs = [language]
        total, counts = sums.total(system.n_queries, langs), sums.per_passage(system.n_queries, langs)
        return pids, (
            augment_with_sums(
                pemb[s : s + self.search_block],
                total[s : s + self.search_block],
                counts[s : s + self.search_block],
                system.alpha,
                fold,
            )
            for s in spans
        )

    def run(
        self,
        system: System,
        queries: Sequence[Query],
        query_name: str,
        k: int = 100,
        query_emb: np.ndarray | None = None,
    ) -> Run:
        """A system's ranking (top k) of one query set, by exact search a block of passages at
        a time (`search_blocks`); a routed system searches each query in the index of its
        language (the benchmark's language label)."""
        if query_emb is None:
            query_emb = self.queries(system.encoder, queries, query_name, system.training)
        if not (system.xqg and split_mode(system.mode)[0]):
            return dense_retrieve(*self.system_blocks(system), queries, query_emb, k)
        run: Run = {}
        for lang in sorted({q.language for q in queries}):
            idx = [i for i, q in enumerate(queries) if q.language == lang]
            run.update(
                dense_retrieve(
                    *self.system_blocks(system, lang), [queries[i] for i in idx], query_emb[idx], k
                )
            )
        return run

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
