import numpy as np
import streamlit as st

import kit

import calls
import current
import settings
import sidebar
import widgets

def _advice(c, n_clusters: int, n: int) -> str:
    """What to change when a clustering gives one cluster, all noise or singletons."""
    if c.method == "dbscan":
        eps = c.params.get("eps")
        return ("Try a smaller eps" if n_clusters == 1 else "Try a larger eps") + (
            f" than {eps:.3f}" if isinstance(eps, float) else " than the knee") + " or HDBSCAN."
    if c.method == "hdbscan":
        return "Try a smaller minimum cluster size." if n_clusters == 0 else "Try a larger minimum cluster size."
    if c.method == "chinese_whispers":
        return "Try a higher similarity threshold." if n_clusters == 1 else "Try a lower similarity threshold."
    if c.method in ("leiden", "infomap"):
        return "Try another resolution or k-means with a K."
    return f"Try a K between 2 and {max(2, n // 2)}."


st.title("Cluster")
folder = sidebar.folder()
images = current.images_or_explain(folder)
if images is not None:
    s = settings.settings()
    bb = settings.primary_backbone()
    method = st.selectbox("Algorithm", list(settings.METHODS), format_func=settings.METHODS.get,
                          **settings.bind("method"))
    if method in settings.NEEDS_K:
        lo, hi = current.k_range(images)
        if hi > lo:
            st.slider("Number of clusters K", lo, hi, **settings.bind("k", value=current.current_k(images)),
                      help="Starts at the number of true labels (8 without labels). The 'How many groups?' page "
                           "can set it from an estimate.")
        else:
            st.caption(f"K = {lo}: with {len(images)} photos no other K is possible.")
    fallbacks = {}
    if method == "dbscan":  # eps offered at the knee of the k-distance curve of these photos
        d, eps_auto = kit.cluster.k_distance(calls.embeddings(folder, bb).vectors, s["min_samples"])
        fallbacks["eps"] = eps_auto
    widgets.method_controls(method, len(images), fallbacks)
    if method == "dbscan":
        st.plotly_chart(kit.plot.k_distance(d, s["eps"] or eps_auto), key="k_distance")
    if settings.description(method):
        st.caption(settings.description(method))
    result = current.current_result(folder)
    if result is not None and method in settings.AUTOMATIC and result.clustering.method not in settings.AUTOMATIC:
        st.info(f"Only {len(result.labels)} photos: the automatic choice needs at least {settings.AUTO_MIN_ROWS} to "
                f"compare methods on two halves, so this is k-means at K = {result.clustering.params['n_clusters']}.",
                icon=":material/info:")
    if result is not None:
        c, labels = result.clustering, result.labels
        s_, undefined = result.scores, result.undefined  # of the labels shown (hand edits included)
        if result.edited:
            st.caption(f"These are your hand-edited clusters ({result.n_edits} edits on the Curate page): every page "
                       "and every export shows them.")
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Clusters", int(s_["n_clusters"]))
        c2.metric("Noise", f"{int((labels < 0).sum())} ({s_['noise_fraction']:.0%})")
        c3.metric("NMI", f"{s_['nmi']:.3f}" if np.isfinite(s_.get("nmi", np.nan)) else "undefined"
                  if undefined else "-", help=undefined or ("Agreement with the true labels" if "nmi" in s_
                                                             else "No true labels in this folder"))
        c4.metric("Silhouette", f"{s_['silhouette']:.3f}" if np.isfinite(s_.get("silhouette", np.nan)) else "-",
                  help=None if np.isfinite(s_.get("silhouette", np.nan)) else
                  "Undefined here: the silhouette needs at least 2 clusters and fewer clusters than photos.")
        n_clusters = int(s_["n_clusters"])
        if n_clusters <= 1 or n_clusters >= len(labels):
            what = ("every photo is noise" if n_clusters == 0 else "every photo is in one cluster"
                    if n_clusters == 1 else "every photo is a cluster of its own")
            st.warning(f"This clustering found nothing to compare: {what}. {_advice(c, n_clusters, len(labels))}",
                       icon=":material/warning:")
        if undefined:
            st.warning(f"External scores (NMI, ARI, BCubed...) are undefined here: {undefined}",
                       icon=":material/help:")
        if c.method in settings.AUTOMATIC:
            chosen = calls.auto_result(folder, bb, c.method, c.params_json)
            st.info(chosen.reason, icon=":material/auto_awesome:")
            with st.expander("Every candidate it scored"):
                st.dataframe(chosen.table, hide_index=True, key="auto_table")
        st.plotly_chart(kit.plot.cluster_sizes(labels), key="sizes")
        st.dataframe(widgets.scores_table(s_), hide_index=True, key="cluster_scores")
