"""A learned pair similarity for :class:`~kit.cluster.HardClusters`: a small Keras model trained on labelled
features (identities other than those to be clustered) that says how likely two neighbours are the same identity.

The paper behind HardClusters refines its kNN similarities with a transformer over each face's neighbourhood,
trained on labelled identities; this is the small version that fits a CPU: a two-layer network on the pair
features ``[x_i * x_j, |x_i - x_j|]`` of every photo and each of its ``k`` nearest neighbours (cosine), trained
with binary cross-entropy to predict "same identity". ``HardClusters(similarity=model)`` uses its probabilities
instead of the cosine similarities of the kNN graph (the graph itself, who is whose neighbour, is unchanged).

Written here because no maintained package offers a pair-similarity head for a kNN graph; Keras is the kit's
network library. Measured in ``bench/hard_clusters.py`` (section d): whether it helps is printed there.
"""
from __future__ import annotations

import os
import tempfile
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from .._utils.arrays import as_seed, check_X, l2_normalize
from .._utils.validation import Interval, validate_params
from .._utils.quiet import quiet, quiet_import

#: The file a saved model is written to inside its folder (with ``similarity.json``, the kit's settings).
MODEL_FILE = "similarity.keras"


def _pair_features(X: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    a, b = X[rows], X[cols]
    return np.hstack([a * b, np.abs(a - b)]).astype(np.float32)


class PairSimilarity:
    """Learned probability that two neighbours are the same identity (see the module).

    Parameters
    ----------
    k : int, neighbours per row whose pairs train the model (and that it scores)
    hidden : int, units of the hidden layer
    epochs, batch_size, learning_rate : the training
    random_state : int

    Attributes
    ----------
    model_ : the fitted ``keras.Model``; ``dim_``: feature dimension; ``history_``: training loss per epoch;
    ``positive_rate_``: fraction of the training pairs that were the same identity

    Examples
    --------
    >>> sim = PairSimilarity(k=20).fit(X_train, y_train)          # doctest: +SKIP
    >>> sim.save("sim"); sim = PairSimilarity.load("sim")           # doctest: +SKIP
    >>> HardClusters(similarity=sim).fit(X_other).labels_          # doctest: +SKIP
    """

    def __init__(self, k: int = 20, *, hidden: int = 64, epochs: int = 5, batch_size: int = 1024,
                 learning_rate: float = 1e-3, random_state: int = 0):
        self.k = k
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state

    def _validate(self):
        validate_params({"k": [Interval(Integral, 1, None, closed="left")],
                         "hidden": [Interval(Integral, 1, None, closed="left")],
                         "epochs": [Interval(Integral, 1, None, closed="left")],
                         "batch_size": [Interval(Integral, 1, None, closed="left")],
                         "learning_rate": [Interval(Real, 0, None, closed="neither")],
                         "random_state": [Interval(Integral, 0, 2**32 - 1, closed="both")]},
                        {"k": self.k, "hidden": self.hidden, "epochs": self.epochs, "batch_size": self.batch_size,
                         "learning_rate": self.learning_rate, "random_state": self.random_state}, "PairSimilarity")

    def fit(self, X, y):
        """Train on labelled features: the pairs of every row and its ``k`` nearest neighbours, target 1 when
        they share a label. Use identities other than those you will cluster."""
        from .._utils.neighbors import exact_for, knn

        self._validate()
        X = l2_normalize(check_X(X))
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(f"y has shape {y.shape}; give one label per row of X ({len(X)},)")
        if len(np.unique(y)) < 2:
            raise ValueError("y holds one identity; the model learns same-or-not from pairs of several identities")
        k = min(int(self.k), len(X) - 1)
        _, idx = knn(X, k, exact=exact_for(len(X)))
        rows = np.repeat(np.arange(len(X)), k)
        cols = idx.ravel()
        keep = cols >= 0
        rows, cols = rows[keep], cols[keep]
        target = (y[rows] == y[cols]).astype(np.float32)
        self.positive_rate_ = float(target.mean())
        if self.positive_rate_ in (0.0, 1.0):
            raise ValueError(f"every training pair is {'the same' if self.positive_rate_ else 'a different'} "
                             "identity: the model needs both kinds (more identities, or a larger k)")
        keras = quiet_import("keras")

        keras.utils.set_random_seed(as_seed(self.random_state))
        self.dim_ = X.shape[1]
        inputs = keras.Input((2 * self.dim_,))
        hidden = keras.layers.Dense(int(self.hidden), activation="relu")(inputs)
        outputs = keras.layers.Dense(1, activation="sigmoid")(hidden)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(float(self.learning_rate)), loss="binary_crossentropy")
        # the rarer kind weighs as much as the other: most neighbours of a large set are the same identity
        weights = {0: 0.5 / (1 - self.positive_rate_), 1: 0.5 / self.positive_rate_}
        history = model.fit(_pair_features(X, rows, cols), target, epochs=int(self.epochs),
                            batch_size=int(self.batch_size), class_weight=weights, shuffle=True, verbose=0)
        self.history_ = [float(v) for v in history.history["loss"]]
        self.model_ = model
        return self

    def similarities(self, X, idx) -> np.ndarray:
        """``(N, m)`` probabilities that row ``i`` and its neighbour ``idx[i, j]`` are one identity (-1 in ``idx``:
        no neighbour, similarity 0)."""
        if not hasattr(self, "model_"):
            raise ValueError("this PairSimilarity is not fitted: call fit(X, y) or PairSimilarity.load(folder)")
        X = l2_normalize(check_X(X))
        if X.shape[1] != self.dim_:
            raise ValueError(f"X has {X.shape[1]} features but the similarity was trained on {self.dim_}; use "
                             "features from the same model")
        idx = np.asarray(idx)
        out = np.zeros(idx.shape, np.float32)
        for lo in range(0, len(idx), 4096):  # ~4096 x m pairs at once
            part = idx[lo:lo + 4096]
            rows = np.repeat(np.arange(lo, lo + len(part)), part.shape[1])
            cols = part.ravel()
            ok = cols >= 0
            scores = np.zeros(len(cols), np.float32)
            if ok.any():
                feats = _pair_features(X, rows[ok], cols[ok])
                scores[ok] = self.model_.predict(feats, batch_size=8192, verbose=0).ravel()
            out[lo:lo + len(part)] = scores.reshape(part.shape)
        return out

    def save(self, folder) -> Path:
        """Write the model into ``folder`` (created; an existing model there is replaced atomically)."""
        if not hasattr(self, "model_"):
            raise ValueError("this PairSimilarity is not fitted: nothing to save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / MODEL_FILE
        fd, tmp = tempfile.mkstemp(prefix=".similarity-", suffix=".keras", dir=folder)
        os.close(fd)
        try:
            self.model_.save(tmp)
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return final

    @classmethod
    def load(cls, folder) -> "PairSimilarity":
        """A model saved with :meth:`save` (``folder`` or the ``.keras`` file itself)."""
        path = Path(folder)
        path = path / MODEL_FILE if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"folder={str(folder)!r} holds no {MODEL_FILE}; save one with "
                                    "PairSimilarity(...).fit(X, y).save(folder)")
        keras = quiet_import("keras")

        try:
            with quiet():
                model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # a damaged or foreign file: say which, never a bare Keras traceback
            raise ValueError(f"{path} is not a readable pair-similarity model ({type(exc).__name__}: {exc}); "
                             "train and save it again") from exc
        self = cls()
        self.model_ = model
        self.dim_ = int(model.input_shape[-1]) // 2
        return self
