"""Code fingerprints: a component's cache key follows the project code it runs.

TFX keys its cache on a component's settings and input artifacts. Our
components run code referenced by import path (``preprocessing_fn``,
``run_fn``, the ExampleGen's executor, the gates, the Evaluator's metric), so
an edit to that code would be answered from the cache with a stale result.
TFX avoids this for ``module_file`` users by hashing a packaged wheel; here
each component gets the hash of the source files it can run: its entry
module and, transitively, every project module that one imports (found in
their import statements), plus the packages' ``__init__.py`` files that
importing them runs. The hash covers the files' bytes and their paths
relative to the project root: every byte counts (a comment too), the
checkout's location and the files' times do not.
"""
from __future__ import annotations

import ast
import hashlib
import os
from typing import Iterable, List, Set

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT_PACKAGES = ("components",)  # what component code may import of this project (never pipeline/)
EXEC_PROPERTY = "code_fingerprint"


def _module_file(module: str, root: str) -> str | None:
    base = os.path.join(root, *module.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def _imported_modules(path: str) -> Iterable[str]:
    """Every module an ``import`` or ``from ... import`` in the file names, with the
    ``from a import b`` candidates ``a.b`` (b may be a submodule)."""
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _with_parents(module: str) -> List[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing it runs each package's ``__init__``."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def source_files(entry_modules: Iterable[str], root: str = PROJECT_ROOT) -> List[str]:
    """The project's source files that importing ``entry_modules`` can run, relative to ``root``."""
    seen: Set[str] = set()
    files: Set[str] = set()
    pending = [m for entry in entry_modules for m in _with_parents(entry)]
    while pending:
        module = pending.pop()
        if module in seen or module.split(".")[0] not in PROJECT_PACKAGES:
            continue
        seen.add(module)
        path = _module_file(module, root)
        if path is None:  # ``from a import name``: a name, not a module
            continue
        files.add(path)
        for imported in _imported_modules(path):
            pending.extend(_with_parents(imported))
    return sorted(os.path.relpath(path, root) for path in files)


def fingerprint_files(relative_paths: Iterable[str], root: str = PROJECT_ROOT) -> str:
    """sha256 over each file's path (relative, with ``/``) and bytes, in path order."""
    digest = hashlib.sha256()
    for relative in sorted(relative_paths):
        with open(os.path.join(root, relative), "rb") as f:
            content = f.read()
        name = relative.replace(os.sep, "/").encode()
        digest.update(len(name).to_bytes(8, "big") + name + len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def code_fingerprint(entry_modules: Iterable[str], root: str = PROJECT_ROOT) -> str:
    return fingerprint_files(source_files(entry_modules, root), root)


def attach(component, fingerprint: str):
    """Adds the fingerprint to the component's execution properties, which TFX's
    cache key (and a compiled spec) includes; executors read only the properties
    they know, so the value changes nothing else. Returns the component."""
    component.exec_properties[EXEC_PROPERTY] = fingerprint
    return component
