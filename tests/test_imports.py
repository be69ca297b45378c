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
    import of a parent package (Python runs ``kit/faces/__init__`` before ``kit.faces._pool``) is not an edge:
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
    assert {"kit.embedding", "kit.backbones", "kit.embedding._pipeline", "kit.backbones._faces"} <= set(graph)
    assert "kit.backbones._base" in graph["kit.backbones"]
    assert _cycles(graph) == []


# ------------------------------------------------------------------ one package per capability (issue 26)
def _kit_files():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "kit"
    return root, sorted(root.rglob("*.py"))


def _private_imports():
    """(importer, module, name) for every private name a kit module takes from another kit module, by
    ``from X import _name`` or by ``X._name`` on a module it imported, unless the name comes from ``kit._utils``
    or from a private module of the importer's own package."""
    import ast

    root, files = _kit_files()

    def is_module(dotted):
        path = root.parent / dotted.replace(".", "/")
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    def allowed(source, package):
        src_pkg, _, last = source.rpartition(".")
        return source == "kit._utils" or source.startswith("kit._utils.") or (last.startswith("_")
                                                                                and src_pkg == package)

    bad = []
    for path in files:
        parts = ["kit", *path.relative_to(root).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_pkg else parts)
        package = name if is_pkg else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        aliases = {}  # local name -> kit module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("kit.") and alias.asname:
                        aliases[alias.asname] = alias.name
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("kit"):
                continue
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if is_module(full):
                    aliases[alias.asname or alias.name] = full
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    if not allowed(full if is_module(full) else module, package):
                        bad.append((name, module, alias.name))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                target = aliases[node.value.id]
                if not allowed(f"{target}.{node.attr}" if is_module(f"{target}.{node.attr}") else target, package):
                    bad.append((name, target, node.attr))
    return bad


def test_no_private_name_is_imported_from_another_package():
    assert _private_imports() == []


def test_kit_is_one_package_per_capability():
    root, files = _kit_files()
    top_modules = sorted(p.name for p in root.glob("*.py"))
    packages = sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file())
    assert len(top_modules) <= 16, top_modules
    assert len(packages) >= 6, packages
    assert {"_utils", "backbones", "embedding", "cluster", "project", "scale"} <= set(packages)


def test_every_package_lists_its_public_names():
    """Each package's ``__all__`` names only what it really gives (loading the lazy ones)."""
    import importlib

    for name in ("adapt", "backbones", "cluster", "datasets", "embedding", "faces", "project", "scale", "search"):
        package = importlib.import_module(f"kit.{name}")
        assert package.__all__, name
        if name in ("faces", "scale", "adapt"):  # dlib, Dask, TensorFlow: checked by their own suites
            continue
        missing = [n for n in package.__all__ if not hasattr(package, n)]
        assert missing == [], (name, missing)


def test_text_search_loads_no_network_until_used():
    """Issue 30: kit.search and kit.embed_text are reachable without TensorFlow or KerasHub until text is embedded."""
    loaded = _loaded_after("import kit; kit.search.by_text; kit.embed_text; kit.inspect.text_cluster_names")
    assert "tensorflow" not in loaded and "keras" not in loaded
