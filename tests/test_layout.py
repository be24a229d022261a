"""The package layout stays true: no import circle, and every import points down a layer (docs/architecture.md).

The imports are read from the source (every ``import`` and ``from ... import``, also those inside functions),
so a lazy import that closes a circle is caught as well as a top-level one."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import archsearch

ROOT = Path(archsearch.__file__).parent

#: The layers, bottom first. A module belongs to the first entry whose name is the module or a package above it;
#: it may import its own layer's modules (without a circle) and any layer below, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("_version", "errors", "registry", "safeload")),
    ("space core", ("ops", "space", "genotypes", "result")),
    ("spaces", ("spaces",)),
    ("hardware", ("hardware",)),
    ("datasets", ("datasets",)),
    ("objectives and run store", ("objective", "storage", "runlock")),
    ("training", ("training",)),
    ("executors", ("executors",)),
    ("strategies", ("strategies",)),
    ("evaluators", ("evaluators",)),
    ("study", ("rundir", "schedulers", "step", "summary", "study", "oneshot_study", "run_config")),
    ("tools over runs", ("arch_sources", "benchmark", "report")),
    ("dashboard", ("dashboard",)),
    ("api", ("api",)),
    ("command line", ("cli",)),
    ("package", ("",)),  # archsearch/__init__: the public names
]


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


def _imports(name: str, path: Path, is_pkg: bool, modules: dict, missing: list | None = None) -> set[str]:
    """The package's modules that ``name`` imports (a name imported from a package counts as the submodule when
    one exists by that name, else as the package itself). ``missing`` collects imports naming no module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name[len("archsearch."):] for a in node.names if a.name.startswith("archsearch.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if name else []
                if not is_pkg:
                    base = base[:-1]
                if node.level - 1 > len(base):  # climbs above archsearch/
                    if missing is not None:
                        missing.append(f"archsearch.{name}: line {node.lineno} imports beyond the package")
                    continue
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "archsearch":
                mod = node.module[len("archsearch."):] if node.module != "archsearch" else ""
            else:
                continue
            for a in node.names:
                sub = f"{mod}.{a.name}" if mod else a.name
                targets.append(sub if sub in modules else mod)
        for t in targets:
            if t not in modules and missing is not None:
                missing.append(f"archsearch.{name}: line {node.lineno} imports archsearch.{t}, which is no module")
            while t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in modules and t != name:
                found.add(t)
    return found


MODULES = _modules()
GRAPH = {m: _imports(m, p, pkg, MODULES) for m, (p, pkg) in MODULES.items()}


def layer_of(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if p and (module == p or module.startswith(p + ".")):
                return rank
    if module == "":
        return len(LAYERS) - 1
    raise AssertionError(f"archsearch.{module} is in no layer: add it to LAYERS here and to docs/architecture.md")


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), iteratively."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]; counter[0] += 1; stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1; stack.append(w); on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_every_import_names_a_module():
    """Lazy imports inside functions run only when called: a moved module must not leave one dangling."""
    missing: list[str] = []
    for m, (p, pkg) in MODULES.items():
        _imports(m, p, pkg, MODULES, missing)
    assert not missing, "\n".join(missing)


def test_every_module_is_in_a_layer():
    for m in MODULES:
        layer_of(m)


def test_no_import_circle():
    circles = _circles(GRAPH)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(f"archsearch.{m}" for m in c) for c in circles)


def test_imports_point_down_the_layers():
    up = sorted(f"archsearch.{m} ({LAYERS[layer_of(m)][0]}) imports archsearch.{t} ({LAYERS[layer_of(t)][0]})"
                for m, targets in GRAPH.items() for t in targets if layer_of(t) > layer_of(m))
    assert not up, "imports that point up a layer:\n" + "\n".join(up)


def test_no_module_imports_the_package_that_holds_it():
    """A package's __init__ may import its modules (to register them); a module importing its own package back
    is a circle waiting to happen (the registries live in their own modules: spaces.registry, executors.base)."""
    bad = sorted(f"archsearch.{m} imports archsearch.{t or '(the package)'}" for m, targets in GRAPH.items()
                 for t in targets if not m.endswith("__main__")  # ``python -m`` runs the package's entry point
                 if (t == "" and m != "") or (t and m.startswith(t + ".")))
    assert not bad, "\n".join(bad)


def test_the_checks_can_fail(tmp_path):
    """The circle finder, the layer rule and the import reader on made-up input: they are not vacuous."""
    bad = tmp_path / "mod.py"
    bad.write_text("def f():\n    from ..storage import fresh_dir\n    from .no_such_module import x\n")
    missing: list[str] = []
    assert _imports("api", bad, False, MODULES, missing) == set()
    assert len(missing) == 2 and "beyond the package" in missing[0] and "no module" in missing[1]
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []
    assert layer_of("cli.search") > layer_of("study") > layer_of("strategies.random") > layer_of("space")
    with pytest.raises(AssertionError, match="no layer"):
        layer_of("not_a_module")
    # the real graph has the edges we expect to see, so the walk reads lazy imports too
    assert "run_config" in GRAPH["cli.search"] and "spaces.registry" in GRAPH["spaces.macro"]
