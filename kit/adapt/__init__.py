"""Adapting a backbone to your photos: fine-tune the built-in EfficientNet-Lite on labelled folders
(:func:`fine_tune`) or without labels (:func:`fine_tune_contrastive`, SimCLR-style), with a forecast of the
time it takes (:func:`forecast`). The result is a backbone saved under a name, usable wherever a backbone name
is (``kit.embed(..., backbone=name)``).

Examples
--------
>>> import kit
>>> kit.adapt.forecast(500)                                                     # doctest: +SKIP
>>> result = kit.adapt.fine_tune(kit.datasets.clothing(), name="clothing")       # doctest: +SKIP
>>> kit.embed(kit.datasets.clothing(), backbone=result.name)                     # doctest: +SKIP
"""
from ._adapt import (DEFAULT_TRAINABLE_BLOCKS, DEFAULT_VIEWS, MIN_PER_CLASS, MIN_PHOTOS, FineTuneResult, augmentation,
                     fine_tune, fine_tune_contrastive, forecast, nt_xent, remove, trainable_layers)

__all__ = ["DEFAULT_TRAINABLE_BLOCKS", "DEFAULT_VIEWS", "MIN_PER_CLASS", "MIN_PHOTOS", "FineTuneResult",
           "augmentation", "fine_tune", "fine_tune_contrastive", "forecast", "nt_xent", "remove", "trainable_layers"]
