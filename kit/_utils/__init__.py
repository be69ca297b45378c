"""The kit's private toolbox, shared by every package (nothing here is public API).

* ``config`` -- version, ``kit_home()``, the preprocessing version;
* ``validation`` -- parameter constraints and the errors that name parameter, value and fix;
* ``arrays`` -- row normalisation, data-matrix checks, seeds, relabelling by size;
* ``estimator`` -- the base class of every clustering estimator;
* ``neighbors`` -- the one kNN (exact below ``EXACT_MAX`` rows, HNSW above) and kNN graphs;
* ``graph`` -- Chinese Whispers label propagation on a CSR graph;
* ``files`` -- the one atomic write, the one ownership marker, paths on fsspec file systems;
* ``wordvec`` -- GloVe word vectors of ImageNet class names;
* ``lazy`` -- public names of a package loaded from its private modules on first use;
* ``digest`` -- a digest of the kit code and library versions behind a result (cache keys).
"""
