"""Properties (issue 32): every score is the same whatever the cluster ids and the order of the photos, and hand
edits undone one by one give back the original clustering. Hypothesis, deterministic (derandomize): the same
examples on every run."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit import metrics
from kit.curate import ClusterEdits

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def clusterings(draw):
    n = draw(st.integers(2, 40))
    truth = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    labels = draw(st.lists(st.integers(-1, 6), min_size=n, max_size=n))
    order = draw(st.permutations(range(n)))
    ids = draw(st.permutations(range(7)))
    classes = draw(st.permutations(range(5)))
    return np.array(truth), np.array(labels), np.array(order), np.array(ids), np.array(classes)


def _same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], float) and math.isnan(a[k]):
            assert math.isnan(b[k]), k
        else:
            assert a[k] == pytest.approx(b[k], abs=1e-9), k


@SETTINGS
@given(clusterings())
def test_scores_do_not_depend_on_cluster_ids_or_photo_order(case):
    truth, labels, order, ids, classes = case
    relabelled = np.where(labels >= 0, ids[np.clip(labels, 0, None)], -1)  # noise stays noise
    for noise in ("cluster", "singletons"):
        base = metrics.score(truth, labels, noise=noise)
        _same(base, metrics.score(classes[truth], relabelled, noise=noise))
        _same(base, metrics.score(truth[order], labels[order], noise=noise))


@st.composite
def edit_sessions(draw):
    n = draw(st.integers(3, 30))
    labels = draw(st.lists(st.integers(-1, 4), min_size=n, max_size=n).filter(lambda x: max(x) >= 0))
    steps = draw(st.lists(st.tuples(st.sampled_from(["move", "merge", "rename", "split"]),
                                    st.integers(0, 10 ** 6), st.integers(0, 10 ** 6)), max_size=8))
    return np.array(labels), steps


@SETTINGS
@given(edit_sessions())
def test_edits_then_as_many_undos_give_the_original_clustering(session):
    labels, steps = session
    X = np.random.default_rng(0).normal(size=(len(labels), 3))
    e = ClusterEdits(labels, names={int(labels.max()): "given"})
    for op, a, b in steps:
        ids = sorted(set(e.labels.tolist()) - {-1})
        if not ids:
            break
        if op == "move":
            e.move([a % len(labels)], [*ids, -1][b % (len(ids) + 1)])
        elif op == "merge" and len(ids) >= 2:
            e.merge(ids[a % len(ids)], ids[(a + 1 + b % (len(ids) - 1)) % len(ids)])
        elif op == "rename":
            e.rename(ids[a % len(ids)], f"name {b}")
        elif op == "split" and (e.labels == ids[a % len(ids)]).sum() >= 2:
            e.split(X, ids[a % len(ids)], n_clusters=2, random_state=b)
    assert len(e.history) == sum(1 for line in e.log if line["operation"] != "undo")
    while e.history:
        e.undo()
    assert e.labels.tolist() == labels.tolist()
    assert e.names == {int(labels.max()): "given"}
    with pytest.raises(ValueError, match="nothing to undo"):
        e.undo()
