"""SCAN: a clustering head trained on frozen embeddings (Van Gansbeke et al., "SCAN: Learning to Classify
Images without Labels", ECCV 2020), without retraining the backbone.

Each photo's ``n_neighbors`` nearest neighbours are mined in the L2-normalised embedding (the kit's one kNN,
faiss). A small head (PCA to ``reduce_to`` dimensions, no whitening, then one hidden ReLU layer and a softmax
over K; ``hidden=0`` makes it linear) is trained in TensorFlow to give a photo and its neighbours the same
cluster: the loss is ``-mean log <p_i, p_j>`` over neighbour pairs minus ``entropy_weight`` times the entropy
of the mean prediction (which keeps clusters from collapsing into one). ``n_heads`` heads with different
random initialisations are trained together; the head with the lowest SCAN loss is kept (as in the paper), or
the heads are combined by co-association (``combine="coassociation"``). ``self_label=True`` then fine-tunes
on the photos predicted with more than ``confidence`` (cross-entropy, classes weighted by their inverse
frequency, the inputs jittered with Gaussian noise in place of the paper's image augmentations).

Measured on clothing10 (1,485 photos, 10 classes, EfficientNet-Lite0; ``bench/quality.py``): see the README's
"Clustering quality" section. The hidden layer matters (linear head: NMI 0.47-0.56 across heads; 256 hidden
units: 0.56-0.61); self-labelling did not help without image augmentations (0.57-0.60).
``fit(X, views=V)`` trains on augmented views too (``kit.embedding.embed_views``: each photo and each neighbour drawn
as one of its views at each step, neighbours mined on the mean of the views): on clothing10 NMI 0.598 with the
mirror view, 0.599 with six views (no views: 0.594); on the faces 0.686 with the mirror (0.666 without), 0.586 with
six views including grey. ``fit(X, mine_on=M)`` mines the neighbours in another representation of the same
photos: with M the concatenation lite0+1+2 and X lite0, 0.636 on clothing10 but 0.571 on the faces.
The best input measured is ``efficientnet_lite0_grid`` (lite0's last feature map averaged over a 3x3 grid of the
photo) with its mirror view: 0.656 on clothing10 (k-means on lite0: 0.573; k-means on the grid: 0.624) and 0.727 on
the faces (k-means on lite0: 0.531).
TensorFlow is imported inside ``fit`` only.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd

from .._utils.arrays import as_seed, check_n_clusters, check_X, l2_normalize, relabel
from .._utils.estimator import BaseClusterer
from .._utils.neighbors import knn
from .._utils.validation import Interval, StrOptions
from ._estimators import Agglomerative, co_association
from .._utils.quiet import quiet_import

_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
MAX_NEIGHBORS = 20  # the paper's choice; "auto" lowers it on small sets (below N / (2K))
MIN_NEIGHBORS = 5
SCALE = 1.0


def _auto_neighbors(n, k):
    return int(max(1, min(MAX_NEIGHBORS, max(MIN_NEIGHBORS, n // (2 * k)), n - 1)))


class SCAN(BaseClusterer):
    """Clustering head trained with the SCAN loss on frozen embeddings.

    Parameters
    ----------
    n_clusters : int
        K, the number of outputs of each head (a head may leave some empty: ``n_clusters_`` counts the used).
    n_heads : int
        Heads trained together from different random initialisations.
    n_neighbors : int or "auto"
        Neighbours per photo mined in the embedding; "auto": 20, fewer on small sets (N / (2K), at least 5).
    reduce_to : int or None
        PCA dimensions (no whitening: measured to hurt) of the head's input; None keeps the embedding.
    hidden : int
        Units of the hidden ReLU layer; 0 makes each head linear.
    entropy_weight : float
        Weight of the entropy of the mean prediction (higher: more balanced clusters).
    steps, learning_rate : int, float
        Full-batch Adam steps of the SCAN stage and their learning rate.
    noise : float
        Gaussian jitter added to the inputs at each step, as a fraction of their standard deviation.
    self_label : bool
        Fine-tune on confident photos afterwards (``confidence``, ``self_label_steps``).
    combine : "lowest_loss" or "coassociation"
        Keep the head with the lowest SCAN loss, or cluster the heads' co-association (average linkage).
    random_state : int, RandomState or None

    Attributes
    ----------
    labels_ : (N,) int array, clusters numbered by decreasing size
    probabilities_ : (N, K) float array of the kept head (with ``combine="coassociation"``: of the lowest-loss head)
    head_labels_ : (n_heads, N) int array, each head's argmax
    head_scores_ : DataFrame, one row per head: ``head, scan_loss, consistency, entropy, n_clusters,
        agreement`` (mean adjusted Rand index with the other heads: the spread across heads) and ``kept``
    best_head_ : int, the lowest-loss head
    n_neighbors_ : int, neighbours used

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, _ = make_blobs(300, n_features=16, centers=3, random_state=0)
    >>> SCAN(3, n_heads=2, steps=100, random_state=0).fit(X).n_clusters_
    3
    """

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 2, None, closed="left")],
        "n_heads": [_POSITIVE_INT],
        "n_neighbors": [_POSITIVE_INT, StrOptions({"auto"})],
        "reduce_to": [Interval(Integral, 2, None, closed="left"), None],
        "hidden": [Interval(Integral, 0, None, closed="left")],
        "entropy_weight": [Interval(Real, 0, None, closed="left")],
        "steps": [_POSITIVE_INT],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "self_label": ["boolean"],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "self_label_steps": [_POSITIVE_INT],
        "combine": [StrOptions({"lowest_loss", "coassociation"})],
        "random_state": ["random_state"],
    }

    def __init__(self, n_clusters=8, *, n_heads=5, n_neighbors="auto", reduce_to=128, hidden=256,
                 entropy_weight=5.0, steps=300, learning_rate=0.01, noise=0.0, self_label=False, confidence=0.99,
                 self_label_steps=50, combine="lowest_loss", random_state=0):
        self.n_clusters = n_clusters
        self.n_heads = n_heads
        self.n_neighbors = n_neighbors
        self.reduce_to = reduce_to
        self.hidden = hidden
        self.entropy_weight = entropy_weight
        self.steps = steps
        self.learning_rate = learning_rate
        self.noise = noise
        self.self_label = self_label
        self.confidence = confidence
        self.self_label_steps = self_label_steps
        self.combine = combine
        self.random_state = random_state

    # ------------------------------------------------------------ input side, shared by fit and predict
    def _features(self, X):
        Z = l2_normalize(X)
        if self.pca_components_ is not None:
            Z = (Z - self.pca_mean_) @ self.pca_components_.T
        return (Z * self.input_scale_).astype(np.float32)

    def fit(self, X, y=None, *, views=None, mine_on=None):
        """Mine neighbours, train the heads, keep one (or combine them).

        Parameters
        ----------
        X : (N, D) array, the photos' embeddings
        y : ignored
        views : (V, N, D) array or None
            Embeddings of V augmented views of the same photos, row for row (``kit.embedding.embed_views``). With
            views, neighbours are mined on the normalised mean of each photo's vectors (X and its views), and at
            each step every photo and every neighbour is represented by one of its vectors drawn at random, so
            the heads learn to agree across views (the SCAN paper's augmentations, on frozen embeddings); the
            labels are the argmax of the probabilities averaged over the vectors.
        mine_on : (N, D') array or None
            Another representation of the same photos, row for row, to mine the neighbours in (cosine), e.g. the
            concatenation of several backbones' normalised embeddings; the heads still read X. None: X (with
            ``views``, the mean of X and its views).
        """
        self._validate_params()
        X = check_X(X)
        n, k = len(X), int(self.n_clusters)
        check_n_clusters(k, n, "SCAN")
        if n < 3:
            raise ValueError(f"SCAN needs at least 3 rows to mine neighbours; X has {n}")
        if views is not None:
            views = np.asarray(views, dtype=np.float32)
            if views.ndim == 2:
                views = views[None]
            if views.ndim != 3 or views.shape[1:] != X.shape or not np.isfinite(views).all():
                raise ValueError(f"views has shape {views.shape}; it must be (V, N, D) = (V, {n}, {X.shape[1]}): "
                                 f"V views of the rows of X, same order and dimension, finite (or pass views=None)")
        if mine_on is not None:
            mine_on = np.asarray(mine_on, dtype=np.float32)
            if mine_on.ndim != 2 or len(mine_on) != n or not np.isfinite(mine_on).all():
                raise ValueError(f"mine_on has shape {mine_on.shape}; it must be (N, D') with N = {n} finite rows, "
                                 f"the photos of X in the same order (or pass mine_on=None to mine on X)")
        seed = as_seed(self.random_state)
        rng = np.random.default_rng(seed)
        Xn = l2_normalize(X)
        stack = Xn[None] if views is None else np.concatenate([Xn[None], l2_normalize(views.reshape(-1, X.shape[1]))
                                                                .reshape(views.shape)])
        self.n_neighbors_ = (_auto_neighbors(n, k) if self.n_neighbors == "auto"
                             else min(int(self.n_neighbors), n - 1))
        _, neighbors = knn(l2_normalize(stack.mean(0)) if mine_on is None else mine_on, self.n_neighbors_)
        self.pca_mean_, self.pca_components_ = None, None
        if self.reduce_to is not None:
            from sklearn.decomposition import PCA

            pca = PCA(n_components=min(int(self.reduce_to), n - 1, X.shape[1]), random_state=seed).fit(
                stack.reshape(-1, X.shape[1]))
            self.pca_mean_, self.pca_components_ = pca.mean_.astype(np.float32), pca.components_.astype(np.float32)
        self.input_scale_ = 1.0
        Zs = np.stack([self._features(v) for v in stack])  # (1 + V, N, d)
        # rows of norm sqrt(d) on average (features of unit variance): tiny inputs leave the heads at the uniform
        # output, a stationary point of the SCAN loss (measured on 93 faces in 1280-d: 3 of 5 heads stuck there)
        self.input_scale_ = float(SCALE * np.sqrt(Zs.shape[2]) / max(np.linalg.norm(Zs[0], axis=1).mean(), 1e-12))
        Zs = Zs * np.float32(self.input_scale_)
        Z = Zs[0]
        weights, losses = self._train(Z, neighbors, k, rng, Zs if views is not None else None)
        self.weights_ = weights
        P = np.mean([self._forward(z) for z in Zs], axis=0)  # (heads, N, K), averaged over the views
        head_labels = P.argmax(-1)
        self.head_labels_ = np.stack([relabel(h) for h in head_labels])
        self.best_head_ = int(np.argmin(losses["scan_loss"]))
        self.probabilities_ = P[self.best_head_]
        if self.combine == "coassociation" and len(head_labels) > 1:
            D = 1.0 - co_association(list(head_labels))
            self.labels_ = Agglomerative(k, linkage="average", metric="precomputed").fit(D).labels_
        else:
            self.labels_ = self.head_labels_[self.best_head_]
        self.head_scores_ = self._head_table(losses, head_labels)
        return self

    def _head_table(self, losses, head_labels):
        from sklearn.metrics import adjusted_rand_score

        h = len(head_labels)
        agreement = [float(np.mean([adjusted_rand_score(head_labels[i], head_labels[j])
                                    for j in range(h) if j != i])) if h > 1 else float("nan") for i in range(h)]
        return pd.DataFrame({
            "head": np.arange(h), "scan_loss": losses["scan_loss"], "consistency": losses["consistency"],
            "entropy": losses["entropy"], "n_clusters": [int(len(np.unique(l))) for l in head_labels],
            "agreement": agreement, "kept": np.arange(h) == self.best_head_})

    def _forward(self, Z):
        """Softmax outputs of every head, (heads, N, K), in numpy (no TensorFlow needed after fit)."""
        out = []
        for head in self.weights_:
            h = Z
            if "W1" in head:
                h = np.maximum(h @ head["W1"] + head["b1"], 0)
            logits = h @ head["W"] + head["b"]
            logits -= logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            out.append(e / e.sum(axis=1, keepdims=True))
        return np.stack(out)

    def predict_proba(self, X):
        """Cluster probabilities of new rows under the kept head, (N, K)."""
        X = check_X(X)
        return self._forward(self._features(X))[self.best_head_]

    def predict(self, X):
        """The kept head's cluster of new rows (its own numbering, which ``labels_`` re-orders by size)."""
        return self.predict_proba(X).argmax(axis=1)

    # ------------------------------------------------------------ training (TensorFlow)
    def _train(self, Z, neighbors, k, rng, Zs=None):
        """Train the heads on ``Z`` (N, d); with ``Zs`` (1 + V, N, d), on vectors drawn from it at each step."""
        tf = quiet_import("tensorflow")

        heads, d, hidden = int(self.n_heads), Z.shape[1], int(self.hidden)
        tf.random.set_seed(int(rng.integers(2**31 - 1)))  # nothing below draws from TF's generator; set anyway
        variables = {}
        if hidden:
            variables["W1"] = rng.normal(0, 1 / np.sqrt(d), (heads, d, hidden))
            variables["b1"] = np.zeros((heads, 1, hidden))
            variables["W"] = rng.normal(0, 1 / np.sqrt(hidden), (heads, hidden, k))
        else:
            variables["W"] = rng.normal(0, 1 / np.sqrt(d), (heads, d, k))
        variables["b"] = np.zeros((heads, 1, k))
        variables = {name: tf.Variable(v.astype(np.float32), name=name) for name, v in variables.items()}
        trainable = list(variables.values())
        nb = tf.constant(neighbors)
        # with views, the photo itself counts among its neighbours (another of its views must agree, as in the paper)
        nb_views = tf.constant(np.concatenate([np.arange(len(Z))[:, None], neighbors], axis=1))
        ew = float(self.entropy_weight)
        eps = 1e-7

        def logits(Zin):
            h = tf.broadcast_to(Zin[None], (heads, Zin.shape[0], Zin.shape[1]))
            if hidden:
                h = tf.nn.relu(tf.matmul(h, variables["W1"]) + variables["b1"])
            return tf.matmul(h, variables["W"]) + variables["b"]

        def scan_terms(P, Pb=None, nbs=nb):
            dots = tf.einsum("hnc,hnkc->hnk", P, tf.gather(P if Pb is None else Pb, nbs, axis=1))
            consistency = -tf.reduce_mean(tf.math.log(tf.clip_by_value(dots, eps, 1.0)), axis=[1, 2])
            mean = tf.reduce_mean(P, axis=1)
            entropy = -tf.reduce_sum(mean * tf.math.log(tf.clip_by_value(mean, eps, 1.0)), axis=1)
            return consistency, entropy

        opt = tf.keras.optimizers.Adam(float(self.learning_rate))

        @tf.function
        def scan_step(Zin):
            with tf.GradientTape() as tape:
                consistency, entropy = scan_terms(tf.nn.softmax(logits(Zin)))
                loss = tf.reduce_sum(consistency - ew * entropy)
            opt.apply_gradients(zip(tape.gradient(loss, trainable), trainable))

        @tf.function
        def view_step(Za, Zb):
            with tf.GradientTape() as tape:
                consistency, entropy = scan_terms(tf.nn.softmax(logits(Za)), tf.nn.softmax(logits(Zb)), nb_views)
                loss = tf.reduce_sum(consistency - ew * entropy)
            opt.apply_gradients(zip(tape.gradient(loss, trainable), trainable))

        sd = float(Z.std())
        rows = np.arange(len(Z))

        def draw():
            """Each photo's vector of a view drawn at random (two independent draws: anchors, neighbours)."""
            a, b = (rng.integers(len(Zs), size=len(Z)) for _ in range(2))
            return tf.constant(Zs[a, rows]), tf.constant(Zs[b, rows])

        def jitter():
            if self.noise <= 0:
                return tf.constant(Z)
            return tf.constant((Z + rng.normal(0, float(self.noise) * sd, Z.shape)).astype(np.float32))

        for _ in range(int(self.steps)):
            if Zs is None:
                scan_step(jitter())
            else:
                view_step(*draw())
        if self.self_label:
            opt2 = tf.keras.optimizers.Adam(float(self.learning_rate))

            @tf.function
            def label_step(Zin, target, weight):
                with tf.GradientTape() as tape:
                    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(target, logits(Zin))
                    loss = tf.reduce_sum(tf.reduce_sum(ce * weight, 1) / tf.maximum(
                        tf.reduce_sum(tf.cast(weight > 0, tf.float32), 1), 1.0))
                opt2.apply_gradients(zip(tape.gradient(loss, trainable), trainable))

            for _ in range(int(self.self_label_steps)):
                P = tf.nn.softmax(logits(tf.constant(Z))).numpy()
                target, confident = P.argmax(-1), P.max(-1) > float(self.confidence)
                weight = np.zeros(target.shape, np.float32)
                for h in range(heads):
                    counts = np.bincount(target[h][confident[h]], minlength=k).astype(np.float32)
                    if counts.sum() == 0:
                        continue
                    share = counts / counts.sum()
                    weight[h] = np.where(confident[h], 1.0 / (share[target[h]] * k + 1e-6), 0.0)
                label_step(jitter(), tf.constant(target), tf.constant(weight))
        consistency, entropy = scan_terms(tf.nn.softmax(logits(tf.constant(Z))))
        consistency, entropy = consistency.numpy().astype(float), entropy.numpy().astype(float)
        weights = [{name: v.numpy()[h] for name, v in variables.items()} for h in range(heads)]
        return weights, {"scan_loss": consistency - ew * entropy, "consistency": consistency, "entropy": entropy}


def scan(X, n_clusters=8, **params):
    """Function form of :class:`SCAN`: the labels."""
    return SCAN(n_clusters, **params).fit(X).labels_
