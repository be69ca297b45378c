"""MkDocs hook for the API reference: ``kit.cluster``, ``kit.faces`` and ``kit.scale`` load their public names on
first use (``kit._utils.lazy.attach``), which a static reader such as mkdocstrings cannot follow. A line
``::: kit.cluster`` is expanded into the package's docstring and one entry per public name, read from the package's
own map of where each name lives, so the reference always lists what the package exports."""
import importlib
import re

_DIRECTIVE = re.compile(r"^::: (kit(?:\.\w+)*)\s*$", re.MULTILINE)


def _expand(match):
    package = match.group(1)
    try:
        module = importlib.import_module(package)
    except ImportError:  # a function or class path, not a package: mkdocstrings reads it as it is
        return match.group(0)
    where = getattr(module, "_WHERE", None)
    if where is None:
        return match.group(0)
    blocks = [f"::: {package}\n    options:\n      members: false\n"]
    eager = [n for n in getattr(module, "__all__", ()) if n not in where]
    for name in [*eager, *sorted(where)]:
        if not callable(getattr(module, name)):  # constants: documented by the functions that use them
            continue
        if name in where:
            target = where[name]
            relative, attr = target if isinstance(target, tuple) else (target, name)
            path = f"{importlib.util.resolve_name(relative, package)}.{attr}"
        else:
            path = f"{package}.{name}"
        blocks.append(f"::: {path}\n    options:\n      show_root_full_path: false\n      heading_level: 2\n")
    return "\n".join(blocks)


def on_page_markdown(markdown, page, config, files, **kwargs):
    if not page.file.src_uri.startswith("reference/"):
        return markdown
    return _DIRECTIVE.sub(_expand, markdown)
