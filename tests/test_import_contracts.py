"""The app layering is a contract `make test` checks with import-linter (pyproject.toml
[tool.importlinter]). These tests run lint-imports on a copy of the code with one wrong
import added, so a contract that could never break would fail here."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def tree(tmp_path) -> Path:
    """The three root packages and the contracts, copied."""
    for package in ("console", "gateway", "billing"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def add_import(tree: Path, module: str, statement: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{statement}\n")


def test_the_code_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout
    assert "3 kept, 0 broken" in result.stdout


LAYERS, PLUMBING, PAGES = "Layers", "plumbing", "Console pages do not import each other"


@pytest.mark.parametrize("module, statement, broken_contracts", [
    ("billing.reconcile", "from gateway.models import ApiKey", {LAYERS}),
    ("console.tenancy.actions", "from billing.ledger import open_account", {LAYERS}),
    # The pages import billing and gateway, so a way back up to one page also joins the pages.
    ("billing.ledger", "from console.pages import common", {LAYERS, PAGES}),
    ("gateway.keys.api_keys", "from console.pages.common import org_view", {LAYERS, PAGES}),
    ("gateway.observability", "from console.celery import app", {PLUMBING}),
    ("console.tenancy.models", "from console import settings", {PLUMBING}),
    ("billing.ledger", "from console.wsgi import application", {PLUMBING}),
    ("console.pages.quickstart", "from console.pages.models import index", {PAGES}),
])
def test_a_wrong_import_breaks_its_contract(tree, module, statement, broken_contracts):
    assert lint_imports(tree).returncode == 0  # the copy itself is clean
    add_import(tree, module, statement)
    result = lint_imports(tree)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert len(broken) == len(broken_contracts), result.stdout
    assert all(any(name in line for line in broken) for name in broken_contracts), result.stdout
