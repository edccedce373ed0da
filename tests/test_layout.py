"""The package layout stays true: imports run one way through the stages, no cycles, thin commands.

Layers, from the ground up (a module may import its own layer and the layers below it):
ground utilities and raster/ -> dataset/ -> discover/ -> stac/ -> sources/ -> build/ -> release/ -> access/ -> commands/.
See docs/architecture.md for why stac/ sits below sources/ (each source's unit of work returns a STAC item).
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "stac_mmtp"
LAYERS = ["ground", "dataset", "discover", "stac", "sources", "build", "release", "access", "commands"]
GROUND = {"stac_mmtp", "stac_mmtp.errors", "stac_mmtp.atomic", "stac_mmtp.console", "stac_mmtp.digests",
          "stac_mmtp.paths", "stac_mmtp.http"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def layer(mod: str) -> str:
    if mod in GROUND or mod == "stac_mmtp.__main__":
        return "commands" if mod == "stac_mmtp.__main__" else "ground"
    top = mod.split(".")[1]
    if top == "raster":
        return "ground"
    assert top in LAYERS, f"{mod} is in no layer of the written layout (docs/architecture.md)"
    return top


def resolve(mod: str) -> str | None:
    """The longest prefix of `mod` that is one of our modules."""
    parts = mod.split(".")
    for k in range(len(parts), 0, -1):
        cand = ".".join(parts[:k])
        if cand in MODULES:
            return cand
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(mod: str) -> set[str]:
    path = MODULES[mod]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    is_pkg = path.name == "__init__.py"
    typing_only = {id(n) for blk in ast.walk(tree) if isinstance(blk, ast.If) and _is_type_checking(blk.test)
                   for stmt in blk.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # `if TYPE_CHECKING:` imports exist for annotations only, never at run time
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "stac_mmtp":
                continue
            for alias in node.names:
                hit = resolve(f"{target}.{alias.name}")
                if hit:
                    found.add(hit)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "stac_mmtp":
                    hit = resolve(alias.name)
                    if hit:
                        found.add(hit)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("stac_mmtp."):
            hit = resolve(node.value.split(":")[0])  # "module:attribute" of lazily imported commands and sources
            if hit:
                found.add(hit)
    found.discard(mod)
    # a module importing a sibling also runs its package's __init__: that is not a dependency we choose
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_has_a_layer() -> None:
    for mod in MODULES:
        layer(mod)


def test_imports_run_one_way() -> None:
    upward = [
        f"{mod} ({layer(mod)}) imports {dep} ({layer(dep)})"
        for mod, deps in sorted(GRAPH.items())
        for dep in sorted(deps)
        if LAYERS.index(layer(dep)) > LAYERS.index(layer(mod))
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles() -> None:
    # Tarjan's strongly connected components; a package importing its own submodules and a submodule
    # importing its package count like any other edge
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
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
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


def test_the_command_layer_is_the_only_one_that_talks_to_the_terminal() -> None:
    """No library module imports click or the command layer, calls sys.exit or prints a table."""
    offenders = []
    for mod, path in sorted(MODULES.items()):
        if layer(mod) == "commands":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(n.split(".")[0] == "click" for n in names):
                    offenders.append(f"{mod}: imports click")
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and (node.value.id, node.attr) in {("sys", "exit"), ("console", "table")}):
                offenders.append(f"{mod}: {node.value.id}.{node.attr}")
    assert not offenders, "\n".join(offenders)
