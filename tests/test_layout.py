"""The package layout holds its rules: folders follow the data's way, no import cycles, a
short package root, and the public API keeps every name users import."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import emoblend

PACKAGE = Path(emoblend.__file__).parent
REPO = Path(__file__).resolve().parents[1]


def _graph():
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the dev extra)")
    return grimp.build_graph("emoblend", cache_dir=None)


def _cycle(graph) -> list[str] | None:
    """One import cycle among emoblend's modules (function-level imports count), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.find_modules_directly_imported_by(module)):
            if not target.startswith("emoblend"):
                continue
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph.modules):
        if module.startswith("emoblend") and module not in state and (found := visit(module)):
            return found
    return None


def test_no_import_cycles_anywhere_in_the_package():
    graph = _graph()
    assert len(graph.modules) > 40, "the graph should see every module of the package"
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_real_cycle():
    """The check above is only worth something if it sees a cycle when there is one."""
    graph = _graph()
    graph.add_import(
        importer="emoblend.face.blendshapes", imported="emoblend.realtime.estimator"
    )
    cycle = _cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert "emoblend.face.blendshapes" in cycle and "emoblend.realtime.estimator" in cycle


def test_the_layer_contracts_hold():
    """`lint-imports` checks pyproject.toml's contracts: imports point down the layers, and
    the inference side imports no PyTorch."""
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("lint-imports not installed (pip install -e '.[dev]')")
    proc = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 kept, 0 broken" in proc.stdout, proc.stdout


def test_package_root_holds_at_most_six_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 6, modules


@pytest.mark.parametrize(
    "name",
    [
        "BLENDSHAPE_NAMES", "CLASSES", "EmoblendError", "EmotionEstimator", "EmotionReading",
        "EstimatorOptions", "Face", "FaceLandmarker", "StabilizerOptions", "load_classifier",
        "select_blendshapes", "__version__",
    ],
)
def test_public_api_keeps_every_name(name):
    assert name in emoblend.__all__
    assert getattr(emoblend, name) is not None
