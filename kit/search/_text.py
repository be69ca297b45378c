"""Text queries against photo embeddings of a language-aligned backbone."""
from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd

from .. import backbones as _bb
from .._utils.arrays import l2_normalize
from .._utils.validation import Interval, validate_params


def _texts(texts, name: str) -> list:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts) if isinstance(texts, (list, tuple, np.ndarray, pd.Series)) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError(f"{name}={texts!r} must be a non-empty string or a non-empty list of non-empty strings")
    return texts


def embed_text(texts, backbone) -> np.ndarray:
    """Embed texts into the image space of a language-aligned backbone.

    Parameters
    ----------
    texts : str or list of str
    backbone : str or BackboneSpec
        A CLIP or SigLIP backbone (``kit.backbones.has_text(backbone)``): ``clip_vit_base_patch32``,
        ``siglip_base_patch16_224``, or a CLIP/SigLIP preset handle or folder.

    Returns
    -------
    ndarray (len(texts), D) float32, rows L2-normalised: their dot product with ``kit.embed`` rows of the same
    backbone is the cosine similarity the model was trained to make high for matching photos and captions.

    Examples
    --------
    >>> import kit
    >>> kit.embed_text(["a red dress", "a pair of shoes"], backbone="clip_vit_base_patch32").shape  # doctest: +SKIP
    (2, 512)
    """
    texts = _texts(texts, "texts")
    return l2_normalize(_bb.text_features(texts, backbone))


def text_scores(emb, texts, backbone=None) -> np.ndarray:
    """Cosine similarities ``(len(emb), len(texts))`` of every photo of ``emb`` to every text.

    ``backbone`` defaults to the one ``emb`` was made with (``emb.backbone``); it must be language-aligned.
    """
    name = emb.backbone if backbone is None else backbone
    if backbone is not None and _bb.get(backbone).name != emb.backbone:
        raise ValueError(f"backbone={_bb.get(backbone).name!r} differs from the backbone of the embeddings "
                         f"({emb.backbone!r}); text and photos must come from the same model")
    T = embed_text(texts, name)
    X = np.asarray(emb.vectors, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != T.shape[1]:
        raise ValueError(f"emb has {X.shape[1] if X.ndim == 2 else '?'}-d rows but {name!r} embeds text in "
                         f"{T.shape[1]} dimensions; embed the photos with that backbone")
    return l2_normalize(X) @ T.T


def by_text(emb, query, k: int = 20, backbone=None) -> pd.DataFrame:
    """The ``k`` photos of ``emb`` that best match a text ``query``, best first.

    Parameters
    ----------
    emb : Embeddings
        Photos embedded with a language-aligned backbone (CLIP, SigLIP).
    query : str
        What to look for, in words ("a red dress"); several phrasings in a list are averaged.
    k : int
        How many photos to return (all when fewer).
    backbone : optional
        Defaults to ``emb.backbone``.

    Returns
    -------
    DataFrame with columns ``rank`` (1 = best), ``row`` (index into ``emb.vectors``), ``path``, ``score`` (cosine
    similarity) and ``label`` when ``emb`` has labels.

    Examples
    --------
    >>> import kit
    >>> emb = kit.embed(kit.datasets.clothing(), backbone="clip_vit_base_patch32")  # doctest: +SKIP
    >>> kit.search.by_text(emb, "a red dress", k=3).columns.tolist()                  # doctest: +SKIP
    ['rank', 'row', 'path', 'score', 'label']
    """
    validate_params({"k": [Interval(Integral, 1, None, closed="left")]}, {"k": k}, "by_text")
    scores = text_scores(emb, _texts(query, "query"), backbone).mean(axis=1)
    order = np.argsort(-scores, kind="stable")[: int(k)]
    table = pd.DataFrame({"rank": np.arange(1, len(order) + 1), "row": order.astype(np.int64),
                          "path": [str(emb.paths[i]) for i in order], "score": scores[order].astype(np.float64)})
    if emb.labels is not None:
        table["label"] = [str(emb.labels[i]) for i in order]
    return table
