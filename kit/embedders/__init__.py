"""One embedding pipeline with pluggable kinds of embedder.

* :mod:`kit.embedders.base` -- ``BackboneSpec``, the ``Kind`` interface (``BatchKind`` for one vector per photo),
  the kind registry and the process-wide loaded models;
* :mod:`kit.embedders.pipeline` -- the one routine every kind goes through (cache, de-duplication, reassembly,
  unreadable files, progress) and its result, ``Embeddings``;
* :mod:`kit.embedders.classical` -- colour histograms, HOG and raw pixels, the baselines;
* :mod:`kit.embedders.user` -- a user's own callable (``kit.backbones.register``).

The TensorFlow kinds (built-in EfficientNet-Lite, TF-Hub, SavedModel, ``keras.applications``, fine-tuned) are
in :mod:`kit.backbones`, the ``dlib_face`` kind in :mod:`kit.faces.embedder`.
"""
