"""app/evaluation/ is pure domain code: it imports no web, worker or database framework, nor the app."""

import ast
import sys
from pathlib import Path

import pytest

EVALUATION = Path(__file__).resolve().parents[2] / "app" / "evaluation"
FORBIDDEN_ROOTS = {"flask", "celery", "sqlalchemy", "werkzeug", "redis"}
ALLOWED_THIRD_PARTY = {"numpy", "pandas", "pyarrow", "sklearn", "matplotlib", "isal"}
MODULES = sorted(EVALUATION.rglob("*.py"))  # subpackages too: the rule holds for every module below


def package_of(path: Path) -> list[str]:
    """Package of a module below app/evaluation; app.evaluation for a file elsewhere."""
    parts = path.parent.relative_to(EVALUATION).parts if path.is_relative_to(EVALUATION) else ()
    return ["app", "evaluation", *parts]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a module of app.evaluation."""
    found = []
    package = package_of(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package[: len(package) + 1 - node.level] if node.level <= len(package) else []
                name = ".".join([*base, node.module] if node.module else base) or "."
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def is_forbidden(name: str) -> bool:
    root = name.split(".")[0]
    if root in FORBIDDEN_ROOTS or root.startswith("flask_"):
        return True
    if name == "." or root == "app":
        return not (name == "app.evaluation" or name.startswith("app.evaluation."))
    return False


def absolute_app_imports(path: Path) -> list[str]:
    """Imports naming the app by its absolute name: the package must work unchanged under another name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if name == "app" or name.startswith("app.")]
    return found


def test_the_evaluation_package_has_modules():
    assert EVALUATION / "__init__.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.relative_to(EVALUATION).as_posix())
def test_no_framework_or_app_imports(path):
    bad = [f"line {line}: {name}" for line, name in imported_modules(path) if is_forbidden(name)]
    assert not bad, f"{path.relative_to(EVALUATION)} must stay pure but imports {bad}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.relative_to(EVALUATION).as_posix())
def test_only_stdlib_and_the_scientific_stack(path):
    allowed = set(sys.stdlib_module_names) | ALLOWED_THIRD_PARTY | {"app"}
    bad = [
        f"line {line}: {name}"
        for line, name in imported_modules(path)
        if name.split(".")[0] not in allowed and not is_forbidden(name)
    ]
    assert not bad, (
        f"{path.relative_to(EVALUATION)} imports outside the stdlib and numpy/pandas/pyarrow/sklearn/matplotlib: {bad}"
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.relative_to(EVALUATION).as_posix())
def test_imports_inside_the_package_are_relative(path):
    bad = absolute_app_imports(path)
    assert not bad, f"{path.relative_to(EVALUATION)} imports the app by name (use relative imports): {bad}"


def test_the_checker_catches_absolute_app_imports(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "import numpy\nfrom .errors import CheckResult\nfrom app.evaluation.errors import ValidationError\n"
        "import app.evaluation.checks\nfrom application import x\n"
    )
    assert absolute_app_imports(module) == ["line 3: app.evaluation.errors", "line 4: app.evaluation.checks"]


def test_the_package_imports_under_another_name(tmp_path):
    """Copied as-is into another package (as a command-line client would ship it), every module imports."""
    import shutil
    import subprocess

    shutil.copytree(EVALUATION, tmp_path / "client" / "scoring", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "client" / "__init__.py").write_text("")
    modules = [
        "client.scoring." + ".".join(path.relative_to(EVALUATION).with_suffix("").parts)
        for path in MODULES
        if path.name != "__init__.py"
    ]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run([sys.executable, "-c", code, *modules], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_checker_catches_forbidden_imports():
    assert is_forbidden("flask")
    assert is_forbidden("flask_login")
    assert is_forbidden("sqlalchemy.orm")
    assert is_forbidden("app.models")
    assert is_forbidden("app")
    assert not is_forbidden("app.evaluation.errors")
    assert not is_forbidden("pandas")


def test_the_checker_resolves_relative_imports(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("from . import errors\nfrom .errors import CheckResult\nfrom ..models import Team\n")
    names = [name for _, name in imported_modules(module)]
    assert names == ["app.evaluation", "app.evaluation.errors", "app.models"]
    assert [is_forbidden(name) for name in names] == [False, False, True]


def test_subpackages_are_walked_and_resolve_their_own_relative_imports():
    assert EVALUATION / "defence" / "__init__.py" in MODULES
    assert package_of(EVALUATION / "defence" / "checks.py") == ["app", "evaluation", "defence"]
    assert package_of(EVALUATION / "errors.py") == ["app", "evaluation"]
