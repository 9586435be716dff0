"""The house: import-linter's contracts in pyproject.toml (no import circle, the command line on
top, a registry that imports no loader, networks that read no files) hold, and would fail on a
new circle; the commands' torch-free modules import no heavy library."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest.importorskip("importlinter", reason="import-linter is in the dev extra: pip install -e '.[dev]'")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the `strcli` package under `root`, with `root`'s pyproject.toml."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    return subprocess.run([sys.executable, "-c", code], cwd=root, env={"PYTHONPATH": str(root), "PATH": ""},
                          capture_output=True, text=True, timeout=300)


def test_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.fixture()
def tree_copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "strcli", tmp_path / "strcli", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def test_a_new_circle_breaks_the_contract(tree_copy: Path):
    # The SMPL finder asks the registry where the weights live; a registry that asked the
    # body back (as it once did, to check an imported SMPL file) closes a circle.
    registry = tree_copy / "strcli" / "weights" / "registry.py"
    registry.write_text(registry.read_text() + "\n\ndef _circle():\n    from strcli.body import files  # noqa\n")
    result = lint_imports(tree_copy)
    assert result.returncode == 1
    assert "No import circle" in result.stdout and "BROKEN" in result.stdout
    assert ".weights -> .body" in result.stdout or ".body -> .weights" in result.stdout


def test_the_library_never_imports_the_command_line(tree_copy: Path):
    outputs = tree_copy / "strcli" / "road" / "outputs.py"
    outputs.write_text(outputs.read_text() + "\n\ndef _up():\n    from strcli.cli import main  # noqa\n")
    result = lint_imports(tree_copy)
    assert result.returncode == 1
    assert "The command line uses the library, never the reverse BROKEN" in " ".join(result.stdout.split())
    assert "strcli.road.outputs -> strcli.cli.main" in result.stdout


def test_checks_and_command_line_import_no_heavy_library():
    # What `strcli --help`, every flag check and `weights list/import` load before they answer.
    light = ("strcli.cli.main", "strcli.road.options", "strcli.road.inputs", "strcli.road.assets",
             "strcli.body.files", "strcli.weights.registry", "strcli.utils.devices", "strcli.utils.errors")
    heavy = ("torch", "torchvision", "smplx", "ultralytics", "viser", "scipy", "trimesh", "cv2")
    code = (f"import sys\nfor m in {light!r}: __import__(m)\n"
            f"print(' '.join(sorted(m for m in {heavy!r} if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_every_long_module_says_why():
    """The house issue: no module above ~500 lines without a reason in its docstring."""
    import ast

    long = []
    for path in sorted((REPO / "strcli").rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 500 and "Size (over 500 lines)" not in (ast.get_docstring(ast.parse(text)) or ""):
            long.append(str(path.relative_to(REPO)))
    assert long == []


@pytest.mark.parametrize("module,absent", [
    # render draws with cv2 and decodes with PyAV, never detects or crops
    ("strcli.render.overlay", ("ultralytics", "torchvision", "trimesh", "viser")),
    # export reads npz files: no video library, no detector, no mesh library
    ("strcli.export.writer", ("av", "cv2", "ultralytics", "torchvision", "trimesh", "viser")),
    # view serves with viser: no detector, no ResNet-50
    ("strcli.view.viewer", ("ultralytics", "torchvision", "trimesh")),
])
def test_each_command_imports_only_what_it_uses(module, absent):
    """The house issue's start-up rule (timed by benchmarks/startup.py, not here): what a
    command's library module drags in at import, beyond what the command uses, is none."""
    code = f"import sys\nimport {module}\nprint(' '.join(sorted(m for m in {absent!r} if m in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
