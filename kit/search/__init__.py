"""Search photos with words: text embeddings in the image space of a language-aligned backbone (CLIP, SigLIP).

* :func:`embed_text` -- texts to L2-normalised rows comparable with ``kit.embed`` rows of the same backbone;
* :func:`by_text` -- the ``k`` photos of an :class:`~kit.embedding.Embeddings` closest to a text query;
* :func:`text_scores` -- cosine similarities of every photo to every text (what the other two are made of).

Examples
--------
>>> import kit
>>> emb = kit.embed(kit.datasets.clothing(), backbone="clip_vit_base_patch32")   # doctest: +SKIP
>>> kit.search.by_text(emb, "a red dress", k=5)                                    # doctest: +SKIP
"""
from ._text import by_text, embed_text, text_scores

__all__ = ["by_text", "embed_text", "text_scores"]
