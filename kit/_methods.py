"""Names shared by ``kit.cluster`` and callers that must not import scikit-learn just to read them."""

NEEDS_K = frozenset({"kmeans", "minibatch_kmeans", "agglomerative", "spectral", "scan"})
