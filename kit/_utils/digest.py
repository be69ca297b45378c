"""A digest of the code behind a result: every module of the kit packages that compute it (and every kit module
those import, transitively), the kit's version and the versions of the libraries under it.

Results that persist across processes (the dashboard's clusterings and scores on disk) are keyed by it, so an
updated kit or an upgraded scikit-learn never serves a result computed by other code. The modules are found by
reading the import statements, not from a list kept by hand.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
from importlib import metadata
from pathlib import Path

from .config import __version__, kit_home
from .files import atomic_file

#: Libraries whose version is part of a result's digest unless the caller names others.
RESULT_LIBRARIES = ("numpy", "scipy", "scikit-learn", "faiss-cpu", "numba", "igraph", "leidenalg", "infomap",
                    "umap-learn", "openTSNE", "pandas")

_ROOT = Path(__file__).resolve().parents[1]  # the kit package folder


def _modules(root: Path) -> dict:
    """Dotted name -> (file, is_package) for every module under ``root`` (the ``kit`` folder)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


#: Where the import statements found in each module are remembered across processes, keyed by the module's
#: content: parsing every module takes ~0.3 s, which a new dashboard process would pay before its first chart.
IMPORTS_FILE = "code-imports.json"


def _targets(package: str, source: bytes) -> list:
    """The dotted names a module's import statements (module level or inside functions) may refer to."""
    targets = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets += [mod, *(f"{mod}.{a.name}" for a in node.names)]
    return targets


class _Targets:
    """:func:`_targets` of each module, remembered in ``$KIT_HOME/code-imports.json`` under a digest of the
    module's package and bytes (an edited module is parsed again; an unreadable or read-only file only costs time)."""

    def __init__(self):
        self.path = kit_home() / IMPORTS_FILE
        try:
            data = json.loads(self.path.read_text())
            self.known = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            self.known = {}
        self.used, self.added = {}, False

    def __call__(self, package: str, source: bytes) -> list:
        key = hashlib.blake2b(package.encode() + b"\0" + source, digest_size=16).hexdigest()
        found = self.known.get(key)
        if not (isinstance(found, list) and all(isinstance(t, str) for t in found)):
            found, self.added = _targets(package, source), True
        self.used[key] = found
        return found

    def save(self) -> None:
        if not self.added:
            return
        # entries of modules since edited do not pile up: past a few versions of each module, only these are kept
        keep = {**self.known, **self.used} if len(self.known) < 4 * len(_modules(_ROOT)) else self.used
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(self.path, "w", prefix=".code-imports-") as f:
                json.dump(keep, f)
        except OSError:
            pass


def _imports(name: str, source: bytes, is_pkg: bool, modules: dict, targets=None) -> set:
    """The kit modules ``name`` imports (module level or inside functions)."""
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for t in (targets or _targets)(package, source):
        while t and t not in modules and "." in t:
            t = t.rpartition(".")[0]
        if t in modules:
            found.add(t)
    return found


@functools.lru_cache(maxsize=32)
def _digest(packages: tuple, libraries: tuple, root: str, files: tuple) -> str:
    """``files``: (path, size, mtime) of every module, so an edited file is read again."""
    root_path = Path(root)
    modules = _modules(root_path)
    top = root_path.name
    todo = [m for m in modules for p in packages
            if m == f"{top}.{p}" or m.startswith(f"{top}.{p}.")]
    unknown = [p for p in packages if f"{top}.{p}" not in modules]
    if unknown:
        raise ValueError(f"packages={list(packages)}: {unknown} are not packages or modules of the kit; name them as "
                         f"in kit.<name> (e.g. 'cluster', 'metrics')")
    seen, sources, targets = set(), {}, _Targets()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        path, is_pkg = modules[m]
        sources[m] = path.read_bytes()
        todo.extend(_imports(m, sources[m], is_pkg, modules, targets) - seen)
        if is_pkg:  # a package's names may come from any of its modules (some are loaded by name on first use)
            todo.extend(n for n in modules if n.startswith(m + ".") and n not in seen)
    h = hashlib.blake2b(f"kit {__version__}".encode(), digest_size=16)
    for m in sorted(seen):
        h.update(m.encode() + b"\0" + sources[m] + b"\0")
    for lib in libraries:
        try:
            version = metadata.version(lib)
        except metadata.PackageNotFoundError:
            version = "-"
        h.update(f"{lib}={version}\n".encode())
    targets.save()
    return h.hexdigest()


def code_digest(*packages: str, libraries=RESULT_LIBRARIES, root=None) -> str:
    """A digest of the code behind results of ``packages`` (names as in ``kit.<name>``: ``"cluster"``,
    ``"metrics"``...): every module of those packages, every kit module they import (transitively), the kit's
    version and the versions of ``libraries``. ``root``: another copy of the ``kit`` folder (default: this one).

    >>> import kit
    >>> len(kit.code_digest("cluster", "metrics"))
    32
    """
    if not packages:
        raise ValueError("packages=(): name at least one kit package or module, e.g. code_digest('cluster')")
    root = Path(root).resolve() if root is not None else _ROOT
    files = []
    for path in sorted(root.rglob("*.py")):
        st = path.stat()
        files.append((str(path), st.st_size, st.st_mtime_ns))
    return _digest(tuple(packages), tuple(libraries), str(root), tuple(files))
