"""A content hash of the code and parameters a step runs with, so that Make reruns exactly the
steps a change can affect.

The modules are found statically (every ``xqg`` import of the step's module, function-level ones
included, followed transitively, with the packages whose ``__init__`` they execute), and so are
the step's parameter keys (the fields of its ``Config`` class), so the hash is the same on any
machine and needs neither torch nor a model to compute.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path
from typing import Any

from xqg.paths import PROJECT_ROOT

PACKAGE = "xqg"


def module_file(name: str, root: Path = PROJECT_ROOT) -> Path | None:
    """The source file of a dotted ``xqg`` module name, or None when there is none."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Dotted names an ``xqg`` module imports (a ``from a import b`` yields ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def closure(modules: list[str], root: Path = PROJECT_ROOT) -> list[Path]:
    """The source files of `modules`, everything they import from ``xqg``, and their packages."""
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name, root)
        if path is None:
            continue
        seen[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        todo += sorted(_imports(path))
    return sorted(set(seen.values()))


def fingerprint(modules: list[str], root: Path = PROJECT_ROOT) -> str:
    """SHA-256 over the relative paths and contents of the modules' closure."""
    h = hashlib.sha256()
    for path in closure(modules, root):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _is_class_var(annotation: ast.expr) -> bool:
    target = annotation.value if isinstance(annotation, ast.Subscript) else annotation
    return isinstance(target, ast.Name | ast.Attribute) and ast.unparse(target).endswith("ClassVar")


def config_fields(module: str, root: Path = PROJECT_ROOT, name: str = "Config") -> list[str]:
    """The field names of the ``Config`` class of a step module, read from its source, those of
    the ``xqg`` classes it derives from (`EncodingConfig`) first, as dataclasses order them."""
    path = module_file(module, root)
    if path is None:
        raise FileNotFoundError(f"no source for module {module}")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        alias.asname or alias.name: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    local = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            fields: list[str] = []
            for base in node.bases:
                if not isinstance(base, ast.Name):
                    continue
                source = module if base.id in local else imported.get(base.id, "")
                if source == PACKAGE or source.startswith(PACKAGE + "."):
                    fields += [f for f in config_fields(source, root, base.id) if f not in fields]
            own = [
                n.target.id
                for n in node.body
                if isinstance(n, ast.AnnAssign)
                and isinstance(n.target, ast.Name)
                and not _is_class_var(n.annotation)
            ]
            return fields + [f for f in own if f not in fields]
    raise ValueError(f"{path}: no class {name}")


def step_fingerprint(modules: list[str], params: dict[str, Any]) -> str:
    """The code hash of `modules` followed by the hash of the step's parameter values."""
    values = json.dumps(params, sort_keys=True, default=str).encode()
    return f"code {fingerprint(modules)}\nparams {hashlib.sha256(values).hexdigest()}\n"
