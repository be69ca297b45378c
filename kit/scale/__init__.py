"""Scale: photo collections larger than memory or than one machine's patience.

* the embedding store (:class:`EmbeddingStore`): embeddings as Parquet partitions in a folder or on an fsspec URL
  (``s3://``, ``gs://``, ``memory://``...), readable by pandas, Dask, DuckDB or Arrow as they are;
* embedding on Dask (:func:`embed_dask`, with :func:`list_images`, :func:`plan`, :func:`embed_partition`,
  :func:`start_cluster`): partitions over worker processes, resumed where a run stopped;
* out-of-core k-means (:func:`kmeans`: a sample to fit, every partition assigned), projections of a store
  (:func:`project_store`) and scores of stored labels (:func:`score_labels`);
* kNN graphs of a store (:func:`knn_graph`: exact below ``EXACT_MAX`` rows, IVF/HNSW above, with the recall
  measured) and their clustering (:func:`cluster_graph`).

Names load on first use: ``import kit.scale`` imports neither Dask nor pyarrow.

Examples
--------
>>> import kit
>>> run = kit.scale.embed_dask("photos/", store="store/")          # doctest: +SKIP
>>> km = kit.scale.kmeans("store/", 50, random_state=0)           # doctest: +SKIP
"""
from .._utils.lazy import attach

_WHERE = {
    **dict.fromkeys(("STORE_FORMAT", "DTYPES", "STALE_SECONDS", "EmbeddingStore", "Namespace",
                     "write_parquet_atomic"), "._store"),
    **dict.fromkeys(("Listing", "Plan", "ScaleRun", "embed_dask", "embed_partition", "list_images", "plan",
                     "start_cluster"), "._dask"),
    **dict.fromkeys(("StoreKMeans", "StoreProjection", "assign", "default_sample_size", "iter_partitions", "kmeans",
                     "project_store", "read_labels", "sample", "score_labels", "write_vectors"), "._cluster"),
    **dict.fromkeys(("EXACT_MAX", "KnnGraph", "cluster_graph", "knn_graph"), "._graph"),
}
__getattr__, __dir__, __all__ = attach(__name__, _WHERE)
