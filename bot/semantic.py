"""Semantic query terms (``~"neural rendering"``): postings matched by embedding similarity.

The model is WordLlama's ``l2_supercat`` (256 dimensions): a static token-embedding model
whose weights and tokenizer ship inside the ``wordllama`` wheel, so nothing is downloaded at
run time and an embedding is a table lookup and a mean, in numpy. It comes with the optional
extra (``pip install careerbot[semantic]``); without it a ``~`` term is refused when the query
is parsed. Nothing here imports numpy until a semantic term is matched, so deployments
without semantic subscriptions never load it.

A posting's vector is computed once and cached in SQLite with a hash of the text it was
computed from, so it is recomputed only when that text changes; a query phrase is embedded
once per process.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from bot.models import Posting
from bot.query import PostingText, Query
from bot.store import Store

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from tokenizers import Tokenizer

    Vector = npt.NDArray[np.float32]

INSTALL_HINT = "semantic queries need `pip install careerbot[semantic]`"
# Stored beside each vector: a vector of another model is stale.
MODEL = "wordllama-0.4/l2_supercat_256"
_WEIGHTS = "weights/l2_supercat_256.safetensors"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
_REQUIRED_MODULES = ("numpy", "tokenizers", "safetensors")
# How much of a description is embedded. A mean of token vectors blurs as text grows: on the
# fixtures' labelled phrases (bench/bench_semantic.py) 300 and 1,000 characters did about
# alike (F1 0.81, 0.79) and 2,000 worse (0.76); 1,000 gets past an opening about the company.
DESCRIPTION_CHARS = 1000


def available() -> bool:
    """Whether the ``semantic`` extra is installed, without importing it."""
    return _model_dir() is not None and all(find_spec(name) for name in _REQUIRED_MODULES)


def _model_dir() -> Path | None:
    # find_spec, not an import: importing wordllama configures the root logger.
    spec = find_spec("wordllama")
    if spec is None or spec.origin is None:
        return None
    directory = Path(spec.origin).parent
    if not ((directory / _WEIGHTS).is_file() and (directory / _TOKENIZER).is_file()):
        return None
    return directory


def embedded_text(posting: Posting) -> tuple[str, str]:
    """What a posting's vector is made of: its title and team, then its company and the
    start of its description. The two halves count alike, so a long description does not
    drown the title."""
    head = " ".join(part for part in (posting.title, posting.team) if part)
    body = " ".join(
        part for part in (posting.company, (posting.description or "")[:DESCRIPTION_CHARS]) if part
    )
    return head, body


def text_hash(posting: Posting) -> str:
    head, body = embedded_text(posting)
    return hashlib.sha256(f"{MODEL}\x1f{head}\x1f{body}".encode()).hexdigest()[:32]


class Model:
    """The embedding model, loaded once per process (see ``model``)."""

    def __init__(self, directory: Path) -> None:
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self._np = np
        self._table = load_file(str(directory / _WEIGHTS))["embedding.weight"].astype(np.float32)
        self._tokenizer: Tokenizer = Tokenizer.from_file(str(directory / _TOKENIZER))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    def embed(self, texts: Sequence[str]) -> Vector:
        """One unit vector per text (all zeros for a text without tokens)."""
        np = self._np
        vectors = np.zeros((len(texts), self._table.shape[1]), dtype=np.float32)
        encodings = self._tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        for row, encoding in enumerate(encodings):
            if encoding.ids:
                vectors[row] = self._table[encoding.ids].mean(axis=0)
        return self._normalized(vectors)

    def embed_postings(self, postings: Sequence[Posting]) -> Vector:
        halves = [embedded_text(posting) for posting in postings]
        heads = self.embed([head for head, _ in halves])
        bodies = self.embed([body for _, body in halves])
        return self._normalized(heads + bodies)

    def _normalized(self, vectors: Vector) -> Vector:
        norms = self._np.linalg.norm(vectors, axis=1, keepdims=True)
        result: Vector = vectors / self._np.maximum(norms, 1e-12)
        return result


_loading = threading.Lock()


@functools.cache
def _cached_model() -> Model:
    directory = _model_dir()
    if directory is None:
        raise RuntimeError(INSTALL_HINT)
    return Model(directory)


def model() -> Model:
    with _loading:  # from the event loop and worker threads alike: load it once
        return _cached_model()


@functools.lru_cache(maxsize=4096)
def phrase_vector(phrase: str) -> Vector:
    vector: Vector = model().embed([phrase])[0]
    return vector


@dataclass(frozen=True, slots=True)
class SemanticText:
    """A posting's vector, as the ``~"phrase"`` terms of a query see it."""

    vector: Vector
    threshold: float  # the deployment's default, ``[bot] semantic_threshold``

    def similarity(self, phrase: str) -> float:
        """Cosine similarity of the posting and the phrase."""
        return float(self.vector @ phrase_vector(phrase))

    def about(self, phrase: str, threshold: float | None) -> bool:
        """Whether the posting is close enough to the phrase: at ``threshold`` when the
        term names one (``~0.5"…"``), else at the default."""
        return self.similarity(phrase) >= (self.threshold if threshold is None else threshold)


async def posting_vectors(
    store: Store, postings: Sequence[Posting], *, save: bool = True
) -> list[Vector]:
    """The postings' vectors, from the cache where their text is unchanged; the others are
    computed in a worker thread and, when ``save``, cached."""
    import numpy as np

    current = await asyncio.to_thread(model)
    hashes = [text_hash(posting) for posting in postings]
    cached = await store.embeddings(MODEL, [(p.source, p.id) for p in postings])
    vectors: dict[int, Vector] = {}
    stale: list[int] = []
    for position, (posting, digest) in enumerate(zip(postings, hashes, strict=True)):
        found = cached.get((posting.source, posting.id))
        if found is not None and found[0] == digest:
            vectors[position] = np.frombuffer(found[1], dtype="<f4")
        else:
            stale.append(position)
    if stale:
        fresh = await asyncio.to_thread(current.embed_postings, [postings[i] for i in stale])
        for position, vector in zip(stale, fresh, strict=True):
            vectors[position] = vector
        if save:
            rows = [
                (
                    postings[i].source,
                    postings[i].id,
                    hashes[i],
                    fresh[n].astype("<f4").tobytes(),
                )
                for n, i in enumerate(stale)
            ]
            await store.save_embeddings(MODEL, rows)
    return [vectors[position] for position in range(len(postings))]


async def posting_texts(
    store: Store, postings: Sequence[Posting], threshold: float, *, save: bool = True
) -> list[PostingText]:
    """The postings' texts with their vectors, ready for queries with ``~`` terms."""
    vectors = await posting_vectors(store, postings, save=save)
    return [
        replace(PostingText.of(posting), semantic=SemanticText(vector, threshold))
        for posting, vector in zip(postings, vectors, strict=True)
    ]


async def matching(
    store: Store, query: Query, postings: Sequence[Posting], threshold: float
) -> list[Posting]:
    """The postings the query matches, in their order; a query with ``~`` terms gets the
    postings' vectors first (cached ones where they are up to date)."""
    if not query.semantic:
        return [posting for posting in postings if query.matches(posting)]
    texts = await posting_texts(store, postings, threshold)
    return [
        posting for posting, text in zip(postings, texts, strict=True) if query.matches_text(text)
    ]
