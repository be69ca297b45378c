"""Names shared by ``kit.cluster`` and callers that must not import scikit-learn just to read them."""

NEEDS_K = frozenset({"kmeans", "minibatch_kmeans", "agglomerative", "spectral", "scan"})

#: ``kit.cluster.auto`` splits the rows into halves and clusters each: below this many rows it refuses.
AUTO_MIN_ROWS = 20
