"""The layering of app/: no module imports itself back through others, and the leaf services import no feature.

Imports inside functions count: a cycle hidden in a function body is still a cycle, only a later one.
"""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

# Leaf modules: infrastructure every feature may use. They may import each other, the models and the
# extensions, but no feature module of app.services. Edit this list when a leaf moves or a new one appears.
LEAVES = {
    "app.clock",
    "app.services.queue",
    "app.services.audit",
    "app.services.mail",
    "app.services.leaderboard_cache",
    "app.services.competition",
    "app.services.settings",
    "app.services.errors",
}
FEATURE_PACKAGE = "app.services"


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(APP.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def resolve(name: str) -> str | None:
    """The app module an import of `name` loads: itself, or the nearest enclosing module (for a name in it)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, source: str | None = None) -> list[tuple[int, str]]:
    """(line, app module) of every import of an app module in module `name`, function-level imports included."""
    path = MODULES.get(name)
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    package = name.split(".") if source is None and is_package(name) else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) + 1 - node.level], *([node.module] if node.module else [])])
            # "from package import module" loads the module; "from module import name" loads the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "app" or target.startswith("app."):
                resolved = resolve(target)
                if resolved and resolved != name:
                    found.append((node.lineno, resolved))
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the app modules it imports; a package's __init__ is left out as a target of its submodules'
    imports (importing app.services.audit runs app/services/__init__.py, which is not a dependency cycle)."""
    edges = {}
    for name in MODULES:
        edges[name] = {
            target
            for _, target in imports_of(name)
            if not (is_package(target) and name.startswith(target + ".") and target != "app")
        }
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def is_feature(name: str) -> bool:
    return name.startswith(FEATURE_PACKAGE + ".") and name not in LEAVES


def test_every_leaf_exists():
    missing = sorted(LEAVES - set(MODULES))
    assert not missing, f"leaf modules listed in tests/test_layering.py but not found in app/: {missing}"


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle) + " (move what both need into a leaf module)"


def test_leaf_modules_import_no_feature_module():
    bad = [
        f"{leaf} line {line} imports {target}"
        for leaf in sorted(LEAVES & set(MODULES))
        for line, target in imports_of(leaf)
        if is_feature(target)
    ]
    assert not bad, "leaf modules must import no feature module of app.services: " + "; ".join(bad)


def test_the_checker_finds_a_cycle_and_function_level_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = "from app.services import audit\n\ndef f():\n    from app.services.uploads import x\n"
    assert imports_of("app.services.example", source) == [(1, "app.services.audit"), (4, "app.services.uploads")]


def test_the_checker_resolves_relative_imports():
    source = "from . import errors\nfrom ..models import Team\n"
    assert imports_of("app.services.example", source) == [(1, "app.services.errors"), (2, "app.models")]
