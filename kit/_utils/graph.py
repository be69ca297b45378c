"""Label propagation of Chinese Whispers (Biemann 2006) on a CSR graph, shared by ``kit.cluster`` (in memory) and
``kit.scale`` (graphs of an embedding store)."""
from __future__ import annotations

import numpy as np


def chinese_whispers_python(indptr, indices, weights, labels, orders):
    for order in orders:
        changed = 0
        for node in order:
            start, end = indptr[node], indptr[node + 1]
            if start == end:
                continue
            best_label, best_score = labels[node], -1.0
            scores = {}
            for j in range(start, end):
                lab = labels[indices[j]]
                scores[lab] = scores.get(lab, 0.0) + weights[j]
            for lab, s in scores.items():
                if s > best_score or (s == best_score and lab < best_label):
                    best_label, best_score = lab, s
            if best_label != labels[node]:
                labels[node] = best_label
                changed += 1
        if changed == 0:
            break
    return labels


try:  # numba comes with umap-learn; the pure-Python loop is the same algorithm, slower
    from numba import njit

    @njit(cache=False)
    def chinese_whispers_numba(indptr, indices, weights, labels, orders):
        n = len(labels)
        acc = np.zeros(n, np.float64)
        for it in range(orders.shape[0]):
            changed = 0
            for node in orders[it]:
                start, end = indptr[node], indptr[node + 1]
                if start == end:
                    continue
                for j in range(start, end):
                    acc[labels[indices[j]]] += weights[j]
                best_label, best_score = labels[node], -1.0
                for j in range(start, end):
                    lab = labels[indices[j]]
                    s = acc[lab]
                    if s > best_score or (s == best_score and lab < best_label):
                        best_label, best_score = lab, s
                for j in range(start, end):
                    acc[labels[indices[j]]] = 0.0
                if best_label != labels[node]:
                    labels[node] = best_label
                    changed += 1
            if changed == 0:
                break
        return labels
except ImportError:  # pragma: no cover
    chinese_whispers_numba = None
