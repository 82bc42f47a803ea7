"""The layer contracts of .importlinter hold, and they catch a dependency that runs the wrong way."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """Run import-linter on the project's packages found in cwd."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_project_keeps_its_import_contracts():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "module, added_import, broken",
    [
        ("papers/selectors.py", "from realtime import fanout", "papers.selectors -> realtime.fanout"),
        ("realtime/consumers.py", "from realtime.transport import daphne",
         "realtime.consumers -> realtime.transport.daphne"),
        ("paperclient/client.py", "from django.conf import settings", "paperclient.client -> django"),
    ],
)
def test_an_import_the_wrong_way_breaks_a_contract(tmp_path, module, added_import, broken):
    for package in ("papers", "realtime", "paperpipeline", "paperclient"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    with open(tmp_path / module, "a") as source:
        source.write(f"\n{added_import}  # noqa: E402,F401\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout


def test_the_events_leaf_contract_names_every_other_realtime_module():
    """A new realtime module is forbidden to realtime.events too, or the leaf contract would not cover it."""
    contract = (ROOT / ".importlinter").read_text().split("[importlinter:contract:events-leaf]")[1].split("[")[0]
    listed = {line.strip() for line in contract.splitlines()}
    modules = {f"realtime.{path.stem if path.is_file() else path.name}" for path in (ROOT / "realtime").iterdir()
               if (path.suffix == ".py" or (path / "__init__.py").exists()) and path.stem not in ("__init__", "events")}
    assert modules <= listed, sorted(modules - listed)
