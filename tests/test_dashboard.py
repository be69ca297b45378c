"""The dashboard: every page in Streamlit's AppTest (no exception, interactions change results, export
writes files), then the real app in Debian's Chromium (plots and tables rendered, gallery reachable)."""
import os
import re
import time
from pathlib import Path

import pytest

from dashboard.serve import Served

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "streamlit_app.py")
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "screenshots"
PAGES = ["data", "backbones", "k", "cluster", "gallery", "curate", "inspect", "export", "store"]


@pytest.fixture(scope="module", autouse=True)
def fresh_streamlit_home(tmp_path_factory):
    """Streamlit persists cached results under ~/.streamlit/cache: a fresh HOME, so these tests compute what
    they check instead of reading results an older version of the code left there."""
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(tmp_path_factory.mktemp("home"))
    yield
    if old is None:
        os.environ.pop("HOME", None)
    else:
        os.environ["HOME"] = old


def open_page(page, query=None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=600)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.run()
    if page != "data":
        at.switch_page(f"views/{page}.py").run()
    return at


def go(at, page):
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def awkward_folders(tmp_path_factory):
    """Folders of 1, 2 and 5 built-in photos, and 6 good photos beside a JPEG cut in half, an empty file and a PNG
    header with nothing after it."""
    import shutil

    import kit.datasets

    photos = sorted(kit.datasets.clothing().rglob("*.jpg"))
    root = tmp_path_factory.mktemp("awkward")
    out = {}
    for n in (1, 2, 5):
        for p in photos[::50][:n]:
            (root / f"n{n}" / p.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, root / f"n{n}" / p.parent.name / p.name)
        out[f"n{n}"] = root / f"n{n}"
    damaged = root / "damaged" / "photos"
    damaged.mkdir(parents=True)
    for p in photos[:6]:
        shutil.copy(p, damaged / p.name)
    data = photos[7].read_bytes()
    (damaged / "cut.jpg").write_bytes(data[: len(data) // 2])
    (damaged / "empty.jpg").write_bytes(b"")
    (damaged / "header_only.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    out["damaged"] = root / "damaged"
    return out


@pytest.mark.parametrize("folder", ["n1", "n2", "n5", "damaged"])
def test_every_page_runs_on_tiny_and_damaged_folders(folder, awkward_folders):
    """Issue 27.1-2: a damaged photo never takes a page down, and every page works (or says what it needs) from 1
    photo up; the damaged files are listed with their reasons."""
    path = str(awkward_folders[folder])
    for page in PAGES:
        at = open_page(page, {"source": "folder", "folder": path})
        assert not at.exception, (folder, page, [e.value for e in at.exception])
        if page == "inspect":  # one photo is enough for its labels and maps (issue 27.14)
            assert any(list(d.value.columns[:2]) == ["rank", "name"] and len(d.value) == 5 for d in at.dataframe), folder
    if folder == "damaged":
        at = open_page("data", {"source": "folder", "folder": path})
        table = next(d.value for d in at.dataframe if list(d.value.columns) == ["path", "reason"])
        reasons = dict(zip(table["path"].map(lambda p: Path(p).name), table["reason"]))
        assert sorted(reasons) == ["cut.jpg", "empty.jpg", "header_only.png"]
        assert "truncated" in reasons["cut.jpg"]
        assert {m.label: m.value for m in at.metric}["Images"] == "6"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs(page):
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.title) == 1


def test_data_page_counts_the_default_clothing_photos():
    at = open_page("data")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "500" and metrics["Labels"] == "10"  # the real CC0 photos, not the demo
    assert len(at.get("plotly_chart")) == 1 and len(at.get("image")) >= 10  # one thumbnail strip per label
    at.sidebar.radio(key="w_source").set_value("demo").run()
    _ok(at)
    assert "scikit-image" in at.sidebar.caption[0].value  # the quick demo is still one click away


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_changing_k_and_algorithm_changes_scores():
    at = open_page("cluster", query={"method": "kmeans"})
    before = (_metric(at, "Clusters"), _metric(at, "NMI"))
    at.slider(key="w_k").set_value(3).run()
    assert not at.exception
    after_k = (_metric(at, "Clusters"), _metric(at, "NMI"))
    assert after_k[0] == "3" and after_k != before
    at.selectbox(key="w_method").set_value("hdbscan").run()
    assert not at.exception
    assert "HDBSCAN" in at.sidebar.caption[-1].value
    assert (_metric(at, "Clusters"), _metric(at, "NMI")) != after_k
    # the Backbones page's table follows the chosen clustering
    at.switch_page("views/backbones.py").run()
    table = at.dataframe[0].value
    assert set(table.columns) >= {"backbone", "nmi", "ari", "bcubed_f", "silhouette"}
    assert len(at.get("plotly_chart")) == 1


def test_settings_survive_page_switches():
    """Issue 12.1: K set to 5 came back as 8 after a visit to Gallery; min_cluster_size 20 came back as 15."""
    at = open_page("cluster", query={"method": "kmeans"})
    at.slider(key="w_k").set_value(5).run()
    for page in ("gallery", "data", "export"):
        go(at, page)
    go(at, "cluster")
    assert at.slider(key="w_k").value == 5 and _metric(at, "Clusters") == "5"
    go(at, "backbones")
    assert at.dataframe[0].value["n_clusters"].tolist() == [5]  # Backbones scores the same clustering
    go(at, "cluster")
    at.selectbox(key="w_method").set_value("hdbscan").run()
    at.slider(key="w_min_cluster_size").set_value(20).run()
    go(at, "gallery")
    go(at, "cluster")
    assert at.selectbox(key="w_method").value == "hdbscan"
    assert at.slider(key="w_min_cluster_size").value == 20
    go(at, "backbones")
    at.radio(key="w_projection").set_value("pca").run()
    go(at, "data")
    go(at, "backbones")
    assert at.radio(key="w_projection").value == "pca"  # view choices stick too


def _photo_folder(root: Path, classes: int, per_class: int) -> Path:
    """A labelled folder of real photos (copies of the built-in clothing photos) outside the repository."""
    import shutil

    import kit.datasets

    photos = sorted(kit.datasets.clothing().rglob("*.jpg"))
    for c in range(classes):
        sub = root / f"class_{c:03d}"
        sub.mkdir(parents=True)
        for j in range(per_class):
            shutil.copy(photos[(c * per_class + j) % len(photos)], sub / f"p{j}.jpg")
    return root


def _use_folder(at, folder):
    at.sidebar.radio(key="w_source").set_value("folder").run()
    at.sidebar.text_input(key="w_folder").set_value(str(folder)).run()
    return _ok(at)


def test_k_of_one_folder_does_not_carry_over_and_sliders_clamp(tmp_path):
    """Issue 12.2: K=5 from one folder scored another; a folder with 102 labels crashed a slider capped at 40."""
    at = open_page("cluster", query={"method": "kmeans"})
    at.slider(key="w_k").set_value(5).run()
    at.sidebar.radio(key="w_source").set_value("demo").run()
    _ok(at)
    import kit.datasets
    demo_labels = kit.load_folder(kit.datasets.sample_folder()).labels
    assert at.slider(key="w_k").value == len(set(demo_labels))  # back to the new data's default
    go(at, "backbones")
    assert at.dataframe[0].value["n_clusters"].tolist() == [len(set(demo_labels))]
    many = _photo_folder(tmp_path / "many", classes=102, per_class=2)
    _use_folder(at, many)
    go(at, "cluster")
    slider = at.slider(key="w_k")
    assert slider.value == 102 and slider.max >= 102
    assert _metric(at, "Clusters") == "102"


def test_recommended_automatic_and_scan_clusterings_from_the_cluster_page():
    """Issues 15 and 28: the kit's recommended label-free pipeline (kit.cluster_photos: three backbones centred and
    joined, Leiden at the K it finds) is the dashboard's default clustering, Automatic on one backbone and the SCAN head are methods of the Cluster
    page; an automatic clustering says what it chose and why, and every page follows it."""
    at = open_page("cluster")
    _ok(at)
    assert at.selectbox(key="w_method").value == "recommended"  # the default: nothing chosen by hand
    assert "method" not in at.query_params or at.query_params["method"] == "recommended"
    reason = [i.value for i in at.info if " with K=" in i.value]
    assert reason and reason[0].startswith("leiden on concat with K="), reason  # what kit.cluster_photos runs
    assert "held-out silhouette" in reason[0] and "centred" in reason[0], reason[0]
    k = int(re.search(r"with K=(\d+)", reason[0]).group(1))
    assert at.metric[0].value == str(k)  # the clusters shown are the ones it chose
    assert 0.45 < float(at.metric[2].value) <= 1  # NMI on the default photos (k-means at the true K: about 0.6)
    assert any("kit.cluster_photos" in c.value for c in at.caption)
    go(at, "gallery")
    assert sum(1 for m in at.markdown if m.value.startswith("**cluster")) == k
    go(at, "cluster")
    at.selectbox(key="w_method").set_value("auto").run()  # Automatic: the same choice on this backbone alone
    _ok(at)
    reason = [i.value for i in at.info if " with K=" in i.value]
    assert reason and " on efficientnet_lite0 " in reason[0] and "representations" not in reason[0], reason
    assert at.metric[0].value == re.search(r"with K=(\d+)", reason[0]).group(1)
    at.selectbox(key="w_method").set_value("scan").run()
    _ok(at)
    assert at.metric[0].value == "10" and float(at.metric[2].value) > 0.45


def test_how_many_groups_applies_an_estimate():
    """Issue 12.3: a button applies the consensus K (or any method's K) to the clustering."""
    at = open_page("cluster")
    at.selectbox(key="w_method").set_value("hdbscan").run()
    go(at, "k")
    pick = at.selectbox(key="k_pick")
    wanted = next(o for o in pick.options if o.startswith("silhouette"))
    pick.set_value(wanted).run()
    k = int(wanted.rsplit("= ", 1)[1])
    at.button(key="apply_k").click().run()
    _ok(at)
    assert at.success and f"K = {k}" in at.success[0].value
    go(at, "cluster")
    assert at.selectbox(key="w_method").value == "kmeans"  # HDBSCAN has no K: k-means takes it
    assert at.slider(key="w_k").value == k and _metric(at, "Clusters") == str(k)


def test_k_page_plots_have_axis_titles_and_a_cut_line():
    import json

    at = open_page("k")
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    curves = figures[0]
    used = {f"{axis}axis{t.get(axis + 'axis', axis)[1:]}" for t in curves["data"] for axis in "xy"}
    assert len(used) >= 12  # the panels that hold a curve
    assert all(curves["layout"][a].get("title", {}).get("text") for a in used), "every K curve needs axis titles"
    dendro = figures[1]
    clusters = _metric(go(at, "cluster"), "Clusters")  # cut at the clustering's K, not at the K setting (27.6)
    assert any(f"K = {clusters}" in a.get("text", "") for a in dendro["layout"].get("annotations", []))


def test_a_url_restores_the_view_and_follows_changes():
    """Issue 12.4: a reload keeps source, backbones and clustering (query parameters)."""
    at = open_page("cluster", query={"source": "demo", "method": "hdbscan", "min_cluster_size": "20",
                                     "backbones": "efficientnet_lite0"})
    _ok(at)
    assert at.sidebar.radio(key="w_source").value == "demo"
    assert at.selectbox(key="w_method").value == "hdbscan"
    assert at.slider(key="w_min_cluster_size").value == 20
    at.slider(key="w_min_cluster_size").set_value(12).run()
    assert at.query_params["min_cluster_size"] == "12" and at.query_params["source"] == "demo"
    bad = open_page("data", query={"method": "nonsense"})
    assert any("method=nonsense" in w.value for w in bad.sidebar.warning)


def test_a_reload_keeps_the_whole_view():
    """Issue 27.7: projection, colour-by, lasso selection, Gallery threshold, order and page size come back from
    the URL, and changing them updates it; Gallery captions show the label first and the page follows the order
    (27.10)."""
    import kit.datasets

    demo = kit.datasets.sample_folder()
    picked = sorted(str(p.relative_to(demo)) for p in demo.rglob("*.jpg"))[:3]
    query = {"source": "demo", "method": "kmeans", "projection": "pca", "colour_by": "true label",
             "gallery_z": "2.0", "gallery_limit": "24", "gallery_sort": "outliers", "selected": "|".join(picked)}
    at = open_page("backbones", query=query)
    _ok(at)
    assert at.radio(key="w_projection").value == "pca" and at.radio(key="w_colour_by").value == "true label"
    assert any(h.value == f"Selected: {len(picked)} photos" for h in at.subheader)
    go(at, "gallery")
    assert at.select_slider(key="w_gallery_z").value == 2.0
    assert at.select_slider(key="w_gallery_limit").value == 24
    assert at.radio(key="w_gallery_sort").value == "outliers"
    assert any(c.value.startswith("Outliers first") for c in at.caption)
    at.select_slider(key="w_gallery_z").set_value(3.5).run()
    at.radio(key="w_gallery_sort").set_value("representative").run()
    assert at.query_params["gallery_z"] == "3.5" and "gallery_sort" not in at.query_params  # the default is left out
    assert at.query_params["selected"] == "|".join(picked) and at.query_params["projection"] == "pca"
    assert any(c.value.startswith("Representative first") for c in at.caption)
    labels = {p.parent.name for p in demo.rglob("*.jpg")}
    captions = [c for m in at.markdown for c in re.findall(r"<figcaption[^>]*>([^<]*)</figcaption>", m.value) if c]
    assert captions and all(c.lstrip("⚠ ").split(" · ")[0] in labels for c in captions), captions[:3]


def test_defaults_that_find_nothing_say_so_and_scores_are_rounded():
    """Issue 27.8: DBSCAN at its default eps puts the built-in photos in one cluster: the page says so and what to
    try; scores show rounded (an AMI of -2e-15 is 0.0)."""
    at = open_page("cluster", query={"method": "dbscan"})
    _ok(at)
    if _metrics(at)["Clusters"] in ("0", "1"):
        assert any("found nothing to compare" in w.value and "eps" in w.value for w in at.warning)
    table = next(d.value for d in at.dataframe if "ami" in d.value.columns)
    values = table.iloc[0].drop(labels=["n_clusters"]).dropna().astype(float)
    assert ((values == values.round(3)) & ~((values.abs() < 1e-9) & (values != 0))).all()


def test_small_folders_get_a_usable_default_k_and_plain_words(awkward_folders):
    """Issue 27.9 and 27.13: 5 photos are not 5 clusters by default; the sidebar names the K in use, not 'k
    automatic'; counts read '1 photo'."""
    at = open_page("cluster", query={"source": "folder", "folder": str(awkward_folders["n5"]), "method": "kmeans"})
    _ok(at)
    k = at.slider(key="w_k").value
    assert k <= 2 and _metrics(at)["Clusters"] == str(k)
    footer = at.sidebar.caption[-1].value
    assert f"n_clusters={k}" in footer and "automatic" not in footer
    one = open_page("data", query={"source": "folder", "folder": str(awkward_folders["n1"])})
    assert any(s.value == "The image file could be read." for s in one.success)


def test_a_zip_that_is_not_one_is_refused_in_plain_words(tmp_path):
    import io

    import kit.datasets

    with pytest.raises(ValueError) as refused:
        kit.datasets.extract_zip(io.BytesIO(b"not a zip at all"), tmp_path / "out")
    assert "BytesIO" not in str(refused.value) and "not a readable zip archive" in str(refused.value)
    with pytest.raises(ValueError, match=r"the 3 bytes given is not a readable zip"):
        kit.datasets.extract_zip(b"abc", tmp_path / "out2")


def test_classical_baselines_are_offered_and_scored_beside_the_cnn():
    """Issue 13: colour histograms, HOG and raw pixels are backbones like any other in the dashboard. With the
    recommended clustering (three backbones at once, the default: issue 28) the table still compares them, by
    Automatic on each backbone alone, below the recommended clustering's own row, which the Cluster page shows."""
    at = open_page("backbones", query={"backbones": "efficientnet_lite0,hog,color_hist"})
    _ok(at)
    options = set(at.sidebar.multiselect(key="w_backbones").options)
    assert {"color_hist", "hog", "pixels", "efficientnet_lite0"} <= options
    table = at.dataframe[0].value.set_index("backbone")
    assert list(table.index) == ["recommended (lite0+lite1+lite2)", "efficientnet_lite0", "hog", "color_hist"]
    assert table.loc["efficientnet_lite0", "nmi"] > table.loc["hog", "nmi"] + 0.2
    assert len(at.get("plotly_chart")) == 3
    recommended = table.iloc[0]
    go(at, "cluster")
    assert _metric(at, "Clusters") == str(int(recommended["n_clusters"]))
    assert _metric(at, "NMI") == f"{recommended['nmi']:.3f}"


def test_the_data_page_finds_near_duplicates_on_request():
    """Issue 17: near-duplicate groups on the Data page, each with a photo to keep."""
    at = open_page("data")
    assert not at.get("toggle") or not at.toggle(key="w_near_duplicates").value  # opt-in: it embeds the photos
    at.toggle(key="w_near_duplicates").set_value(True).run()
    _ok(at)
    at.slider(key="w_near_dup_threshold").set_value(0.85).run()
    _ok(at)
    table = next(d.value for d in at.dataframe if "keep" in d.value.columns)
    assert table.group.nunique() >= 1 and (table.groupby("group").keep.sum() == 1).all()
    assert any("photos you could drop" in m.value for m in at.markdown)


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_every_page_and_export_report_the_hand_edited_clustering(tmp_path):
    """Issue 27.4: after a hand edit, the Cluster page, the written CSV and the run log all hold the edited labels
    and the scores of those labels (the run log once kept the algorithm's)."""
    import json
    import shutil

    import pandas as pd

    from kit import metrics

    folder = tmp_path / "photos"
    for cls in ("dress", "shoes", "hat"):
        (folder / cls).mkdir(parents=True)
        for p in sorted((ROOT / "assets" / "clothing" / "images" / cls).glob("*.jpg"))[:10]:
            shutil.copy(p, folder / cls / p.name)
    at = _use_folder(open_page("data", query={"method": "kmeans"}), folder)
    go(at, "curate")
    before = _metrics(at)
    at.selectbox(key="merge_a").set_value(0).run()
    at.button(key="btn_merge").click().run()
    edited = _metrics(_ok(at))
    assert edited["NMI"] != before["NMI"]
    go(at, "cluster")
    assert _metrics(at)["NMI"] == edited["NMI"] and _metrics(at)["Clusters"] == edited["Clusters"]
    go(at, "export")
    out = tmp_path / "out"
    at.text_input(key="out_dir").set_value(str(out)).run()
    at.button(key="btn_csv").click().run()
    at.button(key="btn_log").click().run()
    _ok(at)
    table = pd.read_csv(out / "clusters.csv")
    run = json.loads((out / "runs.jsonl").read_text().splitlines()[-1])
    nmi = metrics.nmi(table["true_label"], table["cluster"])
    assert f"{nmi:.3f}" == edited["NMI"] == f"{run['scores']['nmi']:.3f}"
    assert run["scores"]["n_clusters"] == table["cluster"].nunique() == int(edited["Clusters"])
    assert run["params"]["hand_edits"] == 1


def test_how_many_groups_gives_the_answer_the_clustering_used():
    """Issue 27.5-6: the K page's verdict is the one the Automatic clustering states, and its dendrogram is cut at
    the number of clusters shown on the Cluster page."""
    at = open_page("cluster")  # the default clustering: the recommended one (label-free, automatic)
    clusters = _metrics(at)["Clusters"]
    reason = next(i.value for i in at.info if " with K=" in i.value)
    go(at, "k")
    consensus = _metrics(at)["Consensus K"]
    if "No clear structure" in reason:
        assert consensus == "no clear K" and any("no clear K" in w.value for w in at.warning)
    else:
        assert consensus != "no clear K"
    assert any(f"cuts the tree into K = {clusters} groups" in c.value for c in at.caption), clusters


def test_two_tabs_curating_one_clustering_never_lose_an_edit(tmp_path):
    """Issue 27.3: tab A moves photos, tab B (opened before) merges two clusters. B's save is refused with a
    message, A's move stays in effect, B's edits are kept on disk, and a reload shows A's move."""
    import shutil

    import pandas as pd

    folder = tmp_path / "photos"
    for cls in ("dress", "shoes", "hat"):
        (folder / cls).mkdir(parents=True)
        for p in sorted((ROOT / "assets" / "clothing" / "images" / cls).glob("*.jpg"))[:8]:
            shutil.copy(p, folder / cls / p.name)
    tab_a = go(_use_folder(open_page("data", query={"method": "kmeans"}), folder), "curate")
    tab_b = go(_use_folder(open_page("data", query={"method": "kmeans"}), folder), "curate")
    tab_a.selectbox(key="move_from").set_value(0).run()
    first = tab_a.multiselect(key="move_pick").options[:2]
    tab_a.multiselect(key="move_pick").set_value(first).run()
    tab_a.selectbox(key="move_to").set_value(-1).run()  # to noise
    tab_a.button(key="btn_move").click().run()
    _ok(tab_a)
    assert any("1 edit in effect" in c.value for c in tab_a.caption)
    tab_b.selectbox(key="merge_a").set_value(0).run()
    tab_b.button(key="btn_merge").click().run()
    _ok(tab_b)
    assert any("another session saved edits" in w.value for w in tab_b.warning)
    edits_dir = Path(os.environ["KIT_HOME"]) / "dashboard" / "edits"
    ours = {p: pd.read_csv(p) for p in edits_dir.glob("*.csv")}
    ours = {p: t for p, t in ours.items() if t["path"].astype(str).str.startswith(str(folder)).all()}
    kept = [t for p, t in ours.items() if ".conflict-" in p.name]
    in_effect = [t for p, t in ours.items() if ".conflict-" not in p.name]
    assert len(kept) == 1 and (kept[0]["cluster"] >= 0).all()  # B's merge (no noise): kept
    assert len(in_effect) == 1 and (in_effect[0]["cluster"] < 0).sum() == 2  # A's move: in effect
    reloaded = go(_use_folder(open_page("data", query={"method": "kmeans"}), folder), "curate")
    assert _metrics(reloaded)["Clusters"] == _metrics(tab_a)["Clusters"]


def test_hand_edits_rescore_persist_and_feed_the_gallery(tmp_path):
    """Issue 17: merge, split, rename, move, undo on the Curate page; scores follow; the edits are saved and come
    back in a new session; the Gallery shows the edited clusters; photos added later are assigned."""
    import shutil

    folder = tmp_path / "photos"
    for cls in ("dress", "shoes", "hat", "pants"):
        (folder / cls).mkdir(parents=True)
        for p in sorted((ROOT / "assets" / "clothing" / "images" / cls).glob("*.jpg"))[:12]:
            shutil.copy(p, folder / cls / p.name)
    at = _use_folder(open_page("data", query={"method": "kmeans"}), folder)  # K = the 4 labels
    go(at, "curate")
    start = _metrics(at)
    at.selectbox(key="merge_a").set_value(0).run()
    at.button(key="btn_merge").click().run()
    _ok(at)
    merged = _metrics(at)
    assert int(merged["Clusters"]) == int(start["Clusters"]) - 1 and merged["NMI"] != start["NMI"]
    at.selectbox(key="split_c").set_value(0).run()
    at.button(key="btn_split").click().run()
    assert int(_metrics(at)["Clusters"]) == int(start["Clusters"])
    at.text_input(key="rename_text_0").input("mixed").run()
    at.button(key="btn_rename").click().run()
    _ok(at)
    assert "mixed" in at.dataframe[0].value.name.tolist()
    at.button(key="btn_undo").click().run()
    assert "mixed" not in at.dataframe[0].value.name.tolist()
    at.text_input(key="rename_text_0").input("mixed").run()
    at.button(key="btn_rename").click().run()
    edited_nmi = _metrics(at)["NMI"]
    saved = list((Path(os.environ["KIT_HOME"]) / "dashboard" / "edits").glob("*.csv"))
    assert saved and any("mixed" in p.read_text() for p in saved)
    runs = (Path(os.environ["KIT_HOME"]) / "dashboard" / "edits" / "runs.jsonl").read_text().splitlines()
    assert any('"rename"' in line for line in runs)

    # a new session (a reload): the edits come back, and the Gallery uses them
    again = _use_folder(open_page("data", query={"method": "kmeans"}), folder)  # the reloaded URL
    go(again, "curate")
    assert _metrics(again)["NMI"] == edited_nmi and "mixed" in again.dataframe[0].value.name.tolist()
    go(again, "gallery")

    # photos added to the folder since: assigned to the existing clusters with the same ids
    (folder / "shirt").mkdir()
    for p in sorted((ROOT / "assets" / "clothing" / "images" / "shoes").glob("*.jpg"))[12:18]:
        shutil.copy(p, folder / "shoes" / p.name)
    later = _use_folder(open_page("data", query={"method": "kmeans"}), folder)
    go(later, "curate")
    assert any("6" in m.value and "added to the folder" in m.value for m in later.markdown)
    later.button(key="btn_assign").click().run()
    _ok(later)
    table = later.dataframe[0].value
    assert -1 not in table.cluster.tolist() and "mixed" in table.name.tolist()


@pytest.mark.parametrize("content", ["empty", "unreadable"])
def test_a_folder_without_photos_explains_instead_of_failing(tmp_path, content):
    """Issue 12.5: an empty folder, or one of unreadable files, gave a traceback on every analysis page and
    'Every image could be read.' on Data."""
    folder = tmp_path / "photos"
    folder.mkdir()
    if content == "unreadable":
        (folder / "a.jpg").write_bytes(b"not a jpeg")
        (folder / "b.png").write_bytes(b"\x89PNG truncated")
        (folder / "notes.txt").write_text("hello")
    at = _use_folder(open_page("data"), folder)
    assert at.error and "Nothing to analyse" in at.error[0].value
    assert not any("Every" in s.value for s in at.success)
    if content == "unreadable":
        assert "2 unreadable" in at.error[0].value and len(at.dataframe) >= 1
    for page in PAGES[1:]:
        if page == "store":  # reads an embedding store, not the chosen folder
            continue
        go(at, page)
        need = {"k": 3, "inspect": 1}.get(page, 2)  # K is estimated between 2 and N-1; one photo has labels and maps
        assert any(f"at least {need} readable photos" in w.value for w in at.warning), page


def test_undefined_scores_are_not_shown_as_perfect(tmp_path):
    """Issue 12.7: 5 photos of one class, all HDBSCAN noise, scored NMI 1.000."""
    at = _use_folder(open_page("data"), _photo_folder(tmp_path / "one", classes=1, per_class=5))
    go(at, "cluster")
    assert any("Only 5 photos" in i.value for i in at.info)  # too few for the automatic default: k-means, said so
    at.selectbox(key="w_method").set_value("hdbscan").run()
    assert _metric(at, "NMI") == "undefined"
    assert any("undefined" in w.value for w in at.warning)
    go(at, "backbones")
    import math
    assert math.isnan(at.dataframe[0].value["nmi"].iloc[0])


def test_export_writes_files(tmp_path):
    at = open_page("export")
    at.text_input(key="out_dir").set_value(str(tmp_path / "out")).run()
    for key in ("btn_csv", "btn_excel", "btn_folders", "btn_log"):
        at.button(key=key).click().run()
        assert not at.exception and not at.error, key
    out = tmp_path / "out"
    import pandas as pd
    csv = pd.read_csv(out / "clusters.csv")
    assert {"path", "cluster", "true_label", "backbone", "method", "params"} <= set(csv.columns)
    assert (out / "clusters.xlsx").exists()
    assert len(list((out / "clusters").glob("cluster_*/*"))) == 500
    assert (out / "runs.jsonl").read_text().count("\n") == 1
    assert len(at.dataframe) == 1  # the run log table
    downloads = {b.proto.label for b in at.get("download_button")}
    assert {"CSV", "Excel", "Cluster folders (zip)", "Download the run log"} <= downloads


def test_exporting_twice_leaves_every_photo_once_and_says_where(tmp_path):
    """Issue 12.9: two exports into one folder mixed runs (800 entries for 400 photos)."""
    at = open_page("export", query={"method": "kmeans"})
    at.text_input(key="out_dir").set_value(str(tmp_path / "out")).run()
    at.button(key="btn_folders").click().run()
    go(at, "cluster")
    at.slider(key="w_k").set_value(4).run()
    go(at, "export")
    at.button(key="btn_folders").click().run()
    _ok(at)
    files = [p for p in (tmp_path / "out" / "clusters").rglob("*") if p.is_file() and p.name != ".kit-export.json"]
    assert len(files) == 500 and len({p.parent.name for p in files}) == 4
    assert str(tmp_path / "out" / "clusters") in at.success[0].value and "replacing" in at.success[0].value


def test_export_refuses_the_source_folder():
    import kit.datasets

    at = open_page("export")
    at.text_input(key="out_dir").set_value(str(kit.datasets.clothing() / "x")).run()
    at.button(key="btn_folders").click().run()
    assert at.error and "never writes" in at.error[0].value


def test_an_unwritable_export_folder_is_a_message_and_the_page_stays(tmp_path):
    """Issue 12.6: a raw FileNotFoundError/PermissionError, and the rest of the page vanished."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    at = open_page("export")
    at.text_input(key="out_dir").set_value(str(blocker / "out")).run()
    for key in ("btn_csv", "btn_folders", "btn_log"):
        at.button(key=key).click().run()
        _ok(at)
        assert at.error and "Could not write" in at.error[0].value, key
        assert len(at.get("download_button")) >= 4  # the rest of the page is still there


def test_inspect_maps_explain_the_chosen_class():
    """Issue 12.11: the maps were captioned with the rank-2 class while top-1 was another."""
    at = open_page("inspect")
    table = at.dataframe[0].value
    top1 = table.loc[table["rank"] == 1, "name"].iloc[0].split(",")[0]
    maps = [c for c in _image_captions(at) if ":" in c]
    assert len(maps) == 2 and all(top1 in c for c in maps), maps
    at.radio(key="w_inspect_rank").set_value(2).run()
    _ok(at)
    top2 = table.loc[table["rank"] == 2, "name"].iloc[0].split(",")[0]
    captions = [c for c in _image_captions(at) if ":" in c]
    assert len(captions) == 2 and all(top2 in c for c in captions), captions


def _image_captions(at):
    found = []

    def walk(node):
        if type(node).__name__ == "Image":
            found.extend(i.caption for i in node.proto.imgs)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    return found


def test_gallery_shows_every_cluster_names_them_and_marks_outliers():
    """Issue 12.12: outliers invisible at the default page size; no overview; truncated names."""
    at = open_page("gallery", query={"method": "kmeans"})  # K = 10
    grids = [m.value for m in at.markdown if "kit-grid" in m.value]
    assert len(grids) == 11  # 10 clusters in the overview + the chosen cluster's page
    names = [m.value for m in at.markdown if m.value.startswith("**cluster")]
    assert len(names) == 10 and all("%" in n for n in names)  # the majority true label and its share
    import kit.datasets
    assert f'title="{kit.datasets.clothing()}' in grids[-1]  # the full path shows on hover

    # Issue 17: the flags are kit.curate.outlier_scores' (robust z, default 3), not a fixed share of each cluster;
    # every flagged photo of a cluster is marked on its first page, wherever it sorts
    def marks():
        return [m.value for m in at.markdown if "kit-grid" in m.value][-1].count("#d62728")

    def flagged():
        caption = next(c.value for c in at.caption if "Red frame" in c.value)
        return int(re.search(r"the (\d+) outlier", caption).group(1))

    def on_page():
        caption = next(c.value for c in at.caption if c.value.startswith("Photos "))
        found = re.search(r"(\d+) of the (\d+) outliers are on this page", caption)
        return int(found.group(1)) if found else 0

    at.select_slider(key="w_gallery_z").set_value(1.5).run()  # a lower threshold flags more photos
    assert not at.exception
    counts, shown = {}, 0
    for c in at.selectbox(key="w_gallery_cluster").options:
        if "noise" in c:
            continue
        at.selectbox(key="w_gallery_cluster").set_value(int(c.split()[1])).run()
        counts[c] = flagged()
        assert marks() == on_page()  # each flagged photo is marked where it is, and the page says how many
        if int(c.split("(")[-1].split()[0]) <= 48:  # the whole cluster fits the default page size
            assert on_page() == counts[c]
        shown += marks()
    assert shown > 0  # outliers are marked on first pages
    at.radio(key="w_gallery_sort").set_value("outliers").run()
    first = [m.value for m in at.markdown if "kit-grid" in m.value][-1]
    if flagged():
        assert first.index("#d62728") < first.index("1px solid")  # outliers first
    low = sum(counts.values())
    at.select_slider(key="w_gallery_z").set_value(4.0).run()
    high = 0
    for c in at.selectbox(key="w_gallery_cluster").options:
        if "noise" not in c:
            at.selectbox(key="w_gallery_cluster").set_value(int(c.split()[1])).run()
            high += flagged()
    assert high < low


def test_the_store_page_explores_a_store_of_any_size(tmp_path):
    """Issue 14 (exploring it): the dashboard opens an embedding store; a map fitted on a sample with every row
    placed, k-means by partition, scores against the store's labels; points up to the measured limit, photos per
    cell above it; thumbnails only for what is chosen."""
    import numpy as np

    import kit.datasets
    import kit.plot
    from kit import scale as scale_cluster

    rng = np.random.default_rng(0)
    photos = sorted(str(p) for p in kit.datasets.clothing().rglob("*.jpg"))[:120]
    centres = rng.normal(scale=5, size=(4, 16))
    truth = np.arange(len(photos)) % 4
    small = tmp_path / "small.store"
    scale_cluster.write_vectors(small, centres[truth] + rng.normal(size=(len(photos), 16)), paths=photos,
                                labels=[f"class{t}" for t in truth], partition_rows=50)
    at = open_page("store")
    assert any("Give the folder" in i.value for i in at.info)
    at.text_input(key="w_store_path").set_value(str(tmp_path / "nothing")).run()
    assert not at.exception and any("is not an embedding store" in w.value for w in at.warning)
    at.text_input(key="w_store_path").set_value(str(small)).run()
    _ok(at)
    at.slider(key="w_store_k").set_value(4).run()
    _ok(at)
    assert any("NMI **1.000**" in m.value for m in at.markdown)  # four separated groups, every row scored
    def traces():
        import json
        return {t["type"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}

    assert traces() == {"scattergl"}
    grid = [m.value for m in at.markdown if "kit-grid" in m.value][-1]
    assert grid.count("<figure") == 30  # one cluster of 120 / 4, nearest its centre first: only these load

    url = f"memory://kit-dashboard-test-{tmp_path.name}/small.store"  # the same rows in a store on an fsspec URL
    scale_cluster.write_vectors(url, centres[truth] + rng.normal(size=(len(photos), 16)), paths=photos,
                                labels=[f"class{t}" for t in truth], partition_rows=50)
    at.text_input(key="w_store_path").set_value(url).run()
    _ok(at)
    assert traces() == {"scattergl"} and any("NMI **1.000**" in m.value for m in at.markdown)

    big = tmp_path / "big.store"
    n = kit.plot.SCATTER_MAX_POINTS + 5000
    scale_cluster.write_vectors(big, (rng.normal(size=(n, 8)) + 6 * (np.arange(n) % 3)[:, None]).astype(np.float32),
                                partition_rows=40_000)
    at.text_input(key="w_store_path").set_value(str(big)).run()
    _ok(at)
    at.slider(key="w_store_k").set_value(3).run()
    _ok(at)
    assert traces() == {"heatmap"}  # above the limit: photos per cell
    assert any(f"{n:,} photos" in c.value for c in at.caption)
    assert [m.value for m in at.markdown if "kit-grid" in m.value][-1].count("<figure") == 48


# ------------------------------------------------------------------ real browser
@pytest.fixture(scope="module")
def served_app():
    with Served() as app:  # `streamlit run dashboard`, as users type it
        yield app.url


def _wait_idle(page, timeout=300_000):
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]') && "
        "!document.querySelector('[data-testid=stSkeleton]') && !document.querySelector('[data-testid=stSpinner]')",
        timeout=timeout)


@pytest.mark.browser
def test_every_page_in_a_real_browser(served_app):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        for name in PAGES:
            page.goto(served_app if name == "data" else f"{served_app}/{name}", timeout=120_000)
            page.locator("h1").first.wait_for(timeout=120_000)
            _wait_idle(page)
            if name in ("backbones", "k", "cluster"):
                page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=300_000)
            if name in ("backbones", "k"):
                page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=300_000)
            if name == "gallery":
                page.locator(".kit-grid img").first.wait_for(timeout=120_000)
                tile = page.locator(".kit-grid figure").last
                assert tile.get_attribute("title").endswith(".jpg")  # the full path on hover
            _wait_idle(page)
            assert page.locator('[data-testid="stException"]').count() == 0, name
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        # click through to a cluster's gallery from the navigation
        page.goto(served_app, timeout=120_000)
        _wait_idle(page)
        page.get_by_role("link", name="Gallery").click()
        page.locator(".kit-grid img").first.wait_for(timeout=120_000)
        _wait_idle(page)  # a dropdown opened while the page still renders is closed by the re-render
        page.locator('[data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name=re.compile(r"^cluster 1 ")).click()
        _wait_idle(page)
        combo = page.locator('[data-testid="stSelectbox"] input[role="combobox"]').first
        assert combo.input_value().startswith("cluster 1 ")
        page.locator(".kit-grid img").nth(3).wait_for(timeout=120_000)
        page.screenshot(path=str(SCREENSHOTS / "gallery_cluster1.png"), full_page=True)
        # photos on hover: the Vega-Lite chart's tooltip shows the photo under the pointer
        page.goto(f"{served_app}/backbones", timeout=120_000)
        page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=300_000)
        page.get_by_text("Photos on hover").click()
        point = page.locator('[data-testid="stVegaLiteChart"] .mark-symbol path').nth(5)
        point.wait_for(timeout=120_000)
        _wait_idle(page)
        point.hover(force=True)
        tip = page.locator("#vg-tooltip-element img")
        tip.wait_for(state="visible", timeout=30_000)
        assert tip.get_attribute("src").startswith("data:image/jpeg;base64,")
        page.screenshot(path=str(SCREENSHOTS / "backbones_hover.png"))
        browser.close()


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


@pytest.mark.browser
def test_a_shared_link_a_lasso_across_backbones_and_downloads(served_app, tmp_path):
    """Issue 12.4, 12.10, 12.13 in a real browser: a URL opens the same view (two backbones, K=6); a lasso in
    one backbone's plot selects photos that every plot highlights, and says how many; the cluster folders
    download as a zip in which every photo appears once."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    import io
    import zipfile

    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
        page.goto(f"{served_app}/backbones?backbones=efficientnet_lite0,efficientnet_lite1&method=kmeans&k=6",
                  timeout=120_000)
        plots = page.locator('[data-testid="stPlotlyChart"]')
        plots.nth(1).locator(".main-svg").first.wait_for(timeout=600_000)
        _wait_idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        table = page.locator('[data-testid="stDataFrame"]').first
        assert "Scores (k-means, n_clusters=6)" in page.locator("h3").first.inner_text()
        page.reload()  # a reload keeps the view
        plots.nth(1).locator(".main-svg").first.wait_for(timeout=600_000)
        _wait_idle(page)
        assert "n_clusters=6" in page.locator("h3").first.inner_text()
        assert table.count() == 1
        # lasso a region of the first plot
        first = plots.nth(0)
        first.hover()
        first.locator('.modebar-btn[data-title="Lasso Select"]').click()
        box = first.locator(".nsewdrag").first.bounding_box()
        cx, cy, w, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"], box["height"]
        page.mouse.move(cx - w * 0.3, cy - h * 0.3)
        page.mouse.down()
        for fx, fy in [(0.3, -0.3), (0.3, 0.3), (-0.3, 0.3), (-0.3, -0.28)]:
            page.mouse.move(cx + w * fx, cy + h * fy, steps=8)
        page.mouse.up()
        heading = page.get_by_text(re.compile(r"^Selected: \d+ photos$"))
        heading.wait_for(timeout=120_000)
        _wait_idle(page)
        n = int(re.search(r"\d+", heading.inner_text()).group())
        assert n > 0
        shown = page.get_by_text(re.compile(r"Highlighted in every plot\. (All \d+ shown|Showing the first \d+ of \d+)"))
        assert str(n) in shown.inner_text()
        page.screenshot(path=str(SCREENSHOTS / "backbones_lasso.png"), full_page=True)
        # downloads on the Export page
        page.get_by_role("link", name="Export").click()
        button = page.get_by_role("button", name="Cluster folders (zip)")
        button.wait_for(timeout=300_000)
        _wait_idle(page)
        with page.expect_download(timeout=300_000) as info:
            button.click()
        data = Path(info.value.path()).read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            photos = [m for m in zf.namelist() if m.startswith("clusters/") and not m.endswith("/")]
            assert len(photos) == 500 and len({m.split("/")[1] for m in photos}) == 6
            assert "clusters.csv" in zf.namelist()
        with page.expect_download(timeout=120_000) as info:
            page.get_by_role("button", name="CSV").first.click()
        csv = Path(info.value.path()).read_text()
        assert csv.splitlines()[0].startswith("path,cluster,true_label,backbone,method,params")
        browser.close()


@pytest.mark.browser
def test_two_browser_tabs_curating_one_clustering_lose_nothing(served_app):
    """Issue 27.3 in a real browser, two contexts (two users or tabs): both open Curate on the same clustering,
    both merge; the second save is refused with a message instead of replacing the first, and the first stays."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        tabs = [browser.new_context(viewport={"width": 1400, "height": 1000}).new_page() for _ in range(2)]
        for page in tabs:  # both open the page before either saves
            page.goto(f"{served_app}/curate?method=kmeans&k=9", timeout=120_000)
            page.get_by_role("tab", name="Merge").wait_for(timeout=600_000)
            _wait_idle(page)
        for page in tabs:
            page.get_by_role("tab", name="Merge").click()
            page.get_by_role("button", name="Merge", exact=True).click()
            _wait_idle(page)
            page.get_by_text("in effect").first.wait_for(timeout=120_000)
        first, second = tabs
        assert first.get_by_text("another session saved edits").count() == 0
        second.get_by_text("another session saved edits").first.wait_for(timeout=60_000)
        assert first.get_by_text("1 edit in effect").count() >= 1
        assert first.locator('[data-testid="stException"]').count() == 0
        assert second.locator('[data-testid="stException"]').count() == 0
        browser.close()
    kept = list((Path(os.environ["KIT_HOME"]) / "dashboard" / "edits").glob("*.conflict-*.csv"))
    assert kept  # the refused merge is kept on disk


_SHOWN_METRICS = """() => Object.fromEntries([...document.querySelectorAll('[data-testid=stMetric]')].map(m => [
    m.querySelector('[data-testid=stMetricLabel]').innerText.trim(),
    m.querySelector('[data-testid=stMetricValue]').innerText.trim()]))"""


@pytest.mark.browser
def test_a_walk_through_every_page_with_hand_edits_shows_one_clustering(served_app):
    """Issue 27 (done when): with a hand edit in effect, every page that shows the clustering and every download
    of the Export page give the same K, labels and scores; downloads clicked one right after another all arrive
    (27.15: a download's click once re-ran the page and the next button's file was gone)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    import io
    import json
    import zipfile

    import pandas as pd

    from kit import metrics
    from playwright.sync_api import sync_playwright

    def nav(page, name, slug):
        page.get_by_role("link", name=name, exact=True).click()
        page.wait_for_url(re.compile(f"/{slug}(\\?|$)"), timeout=120_000)
        page.locator("h1").first.wait_for(timeout=120_000)
        _wait_idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0, name

    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
        page.goto(f"{served_app}/curate?method=kmeans&k=7", timeout=120_000)
        page.get_by_role("tab", name="Merge").wait_for(timeout=600_000)
        _wait_idle(page)
        page.get_by_role("tab", name="Merge").click()
        page.get_by_role("button", name="Merge", exact=True).click()
        page.get_by_text("1 edit in effect").first.wait_for(timeout=120_000)
        _wait_idle(page)
        clusters_metric = page.locator('[data-testid="stMetric"]').filter(has_text="Clusters").first
        clusters_metric.wait_for(timeout=120_000)
        curate = page.evaluate(_SHOWN_METRICS)
        k, nmi = int(curate["Clusters"]), curate["NMI"]
        assert k == 6 and re.fullmatch(r"0\.\d{3}", nmi)

        nav(page, "Cluster", "cluster")
        clusters_metric.wait_for(timeout=300_000)
        shown = page.evaluate(_SHOWN_METRICS)
        assert (int(shown["Clusters"]), shown["NMI"]) == (k, nmi)

        nav(page, "Backbones", "backbones")
        plot = page.locator('[data-testid="stPlotlyChart"]').first
        plot.locator(".legend .traces").nth(k - 1).wait_for(timeout=300_000)
        _wait_idle(page)
        assert plot.locator(".legend .traces").count() == k  # coloured by the edited clusters

        nav(page, "How many groups?", "k")
        page.get_by_text(f"cuts the tree into K = {k} groups").first.wait_for(timeout=300_000)

        nav(page, "Gallery", "gallery")
        page.get_by_text(f"Overview: all {k} clusters").first.wait_for(timeout=120_000)

        nav(page, "Export", "export")
        page.get_by_text(f"{k} clusters, 500 photos").first.wait_for(timeout=120_000)
        names = ["CSV", "Excel", "Run log line (JSON)", "Cluster folders (zip)", "Outlier scores (CSV)"]
        arrived = []
        page.on("download", lambda d: arrived.append(d))
        for name in names:  # one click right after another: no wait for a download or for the page between them
            page.get_by_role("button", name=name, exact=True).first.click()
        deadline = time.time() + 300
        while len(arrived) < len(names) and time.time() < deadline:
            page.wait_for_timeout(500)
        assert sorted(d.suggested_filename for d in arrived) == sorted(
            ["clusters.csv", "clusters.xlsx", "run.jsonl", "clusters.zip", "outliers.csv"])
        got = {name: Path(d.path()).read_bytes() for name, d in zip(names, sorted(
            arrived, key=lambda d: ["clusters.csv", "clusters.xlsx", "run.jsonl", "clusters.zip",
                                    "outliers.csv"].index(d.suggested_filename)))}
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()

    table = pd.read_csv(io.BytesIO(got["CSV"]))
    assert table["cluster"].nunique() == k and len(table) == 500
    assert f"{metrics.nmi(table['true_label'], table['cluster']):.3f}" == nmi
    run = json.loads(got["Run log line (JSON)"].decode().splitlines()[-1])
    assert run["scores"]["n_clusters"] == k and f"{run['scores']['nmi']:.3f}" == nmi
    assert run["params"]["hand_edits"] == 1
    sheets = pd.read_excel(io.BytesIO(got["Excel"]), sheet_name=None)
    assert sorted(len(t) for n, t in sheets.items() if n.startswith("cluster_")) == sorted(
        table["cluster"].value_counts().tolist())  # one sheet per cluster, beside the summary and the run
    with zipfile.ZipFile(io.BytesIO(got["Cluster folders (zip)"])) as zf:
        photos = [m for m in zf.namelist() if m.startswith("clusters/") and not m.endswith("/")]
        by_folder = pd.Series([m.split("/")[1] for m in photos]).value_counts()
    assert len(photos) == 500 and len(by_folder) == k
    assert sorted(by_folder.tolist()) == sorted(table["cluster"].value_counts().tolist())
    assert len(pd.read_csv(io.BytesIO(got["Outlier scores (CSV)"]))) == 500


def test_a_clip_backbone_searches_and_names_in_words(tmp_path, monkeypatch):
    """Issue 30: with a CLIP backbone (here a tiny random one in the cache folder of clip_vit_base_patch32, so
    nothing is downloaded), the Gallery has a text box and names clusters in words, and the Backbones page selects
    the photos a query matches; a preset that is not downloaded is offered, marked, and explains itself."""
    import shutil

    from test_kerashub import _clip_parts

    net, prep = _clip_parts()
    folder = tmp_path / "clip"
    net.save_to_preset(str(folder))
    prep.save_to_preset(str(folder))
    cache = tmp_path / "kagglehub"
    shutil.copytree(folder, cache / "models" / "keras" / "clip" / "keras" / "clip_vit_base_patch32" / "3")
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(cache))
    at = open_page("gallery", query={"method": "kmeans", "backbones": "clip_vit_base_patch32"})
    _ok(at)
    at.text_input(key="gallery_query").set_value("a red dress").run()
    _ok(at)
    caption = next(c.value for c in at.caption if "best match" in c.value)
    assert '"a red dress"' in caption and "24 photos" in caption
    at.toggle(key="gallery_text_names").set_value(True).run()
    _ok(at)
    names = [m.value for m in at.markdown if m.value.startswith("**cluster")]
    assert names and all("“" in n for n in names)  # every cluster has a name in words
    assert any("In quotes" in c.value for c in at.caption)
    go(at, "backbones")
    at.text_input(key="backbones_query").set_value("a blue shoe").run()
    _ok(at)
    assert any(h.value.startswith("Selected: 20 photos") for h in at.subheader)
    # a preset that is not in the cache: offered in the sidebar, marked, and a clear message when chosen offline
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "empty"))
    at = open_page("gallery", query={"method": "kmeans", "backbones": "dinov2_small"})
    assert "dinov2_small (download on first use)" in at.sidebar.multiselect[0].options
    errors = [e.value for e in at.error]
    assert errors and "kit.backbones.fetch('dinov2_small')" in errors[0], errors
