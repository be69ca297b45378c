"""`import kit` stays cheap: the dashboard's first page is served from caches without scikit-learn,
TensorFlow or the projection libraries (bench/dashboard.py measures what that buys)."""
import subprocess
import sys

HEAVY = ("sklearn", "scipy", "tensorflow", "keras", "openTSNE", "umap", "dlib", "faiss", "plotly")


def _loaded_after(code: str) -> list:
    out = subprocess.run([sys.executable, "-c", code + f"\nimport sys; print([m for m in {HEAVY!r} if m in sys.modules])"],
                         capture_output=True, text=True, check=True, timeout=120)
    return eval(out.stdout.strip().splitlines()[-1])


def test_import_kit_and_list_backbones_load_nothing_heavy():
    assert _loaded_after("import kit, kit.datasets; kit.backbones.available()") == []


def test_submodules_load_on_first_use():
    loaded = _loaded_after("import kit; kit.cluster.KMeans; from kit import metrics; kit.compare")
    assert "sklearn" in loaded
    assert "tensorflow" not in loaded  # clustering never needs a network


def test_cached_projection_is_read_without_its_library(tmp_path):
    code = (f"import numpy as np, kit\n"
            f"X = np.random.default_rng(0).normal(size=(60, 8)).astype('float32')\n"
            f"kit.project.project(X, method='tsne', cache_dir={str(tmp_path)!r})\n")
    assert "openTSNE" in _loaded_after(code)  # the first call computes
    again = _loaded_after(code.replace("kit.project.project(X", "p = kit.project.project(X") + "assert p.from_cache\n")
    assert [m for m in again if m in ("openTSNE", "sklearn")] == []


# ------------------------------------------------------------------ no import cycles inside kit/ (issue 13)
def _kit_import_graph():
    """Module -> kit modules it imports (every import statement, at module level or inside functions).

    ``from . import x`` counts as importing ``kit.x`` when that is a module, else the package; the implicit
    import of a parent package (Python runs ``kit/faces/__init__`` before ``kit.faces.pool``) is not an edge:
    packages here import their submodules lazily."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "kit"
    modules = {}
    for path in root.rglob("*.py"):
        parts = ["kit", *path.relative_to(root).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_pkg else parts)
        modules[name] = (path, is_pkg)
    graph = {}
    for name, (path, is_pkg) in modules.items():
        package = name if is_pkg else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules]
                targets = subs if subs and len(subs) == len(node.names) else [mod, *subs]
            for t in targets:
                while t and t not in modules and "." in t:
                    t = t.rpartition(".")[0]
                if t in modules and t != name and t.startswith("kit"):
                    edges.add(t)
        graph[name] = edges
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_inside_kit():
    graph = _kit_import_graph()
    assert {"kit.embed", "kit.backbones", "kit.embedders.pipeline", "kit.faces.embedder"} <= set(graph)
    assert "kit.embedders.base" in graph["kit.backbones"]
    assert _cycles(graph) == []
