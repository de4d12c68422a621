"""The napari plugin's tests: headless (offscreen Qt), skipped when napari is not installed."""

from __future__ import annotations

import os
from pathlib import Path

# Before Qt is imported anywhere: no display is needed.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

# Each test module here starts with pytest.importorskip("napari"), so the folder is skipped,
# with the reason, where the napari extra is missing (a skip raised in this conftest would break
# an explicit ``pytest tests/napari``).

#: Where the documentation's screenshots live; refreshed with INFOCUS_UPDATE_SCREENSHOTS=1.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture
def screenshot_path(tmp_path, request):
    """``screenshot_path("denoise")``: docs/images/napari-denoise.png when
    INFOCUS_UPDATE_SCREENSHOTS=1, else a file in the test's temporary folder (so that a test
    run leaves the repository clean)."""

    def path(name: str) -> Path:
        folder = SCREENSHOTS if os.environ.get("INFOCUS_UPDATE_SCREENSHOTS") == "1" else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"napari-{name}.png"

    return path


#: Warnings napari raises about the test machine, not about infocus (pytest turns warnings into
#: errors): PyQt5 cannot detect the system theme.
_MACHINE_WARNINGS = ("ignore:System theme detection requires a Qt6 backend:UserWarning",)


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            for warning in _MACHINE_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(warning))


@pytest.fixture(autouse=True)
def _no_opengl_needed(monkeypatch):
    """The offscreen Qt platform has no OpenGL context, and napari asks the GL driver for its
    extensions and texture sizes when it makes a layer's visual (the queries return nothing
    there). Answer for it: these tests never draw the canvas, they grab the widgets."""
    for module in ("image", "base", "labels"):
        monkeypatch.setattr(f"napari._vispy.layers.{module}.get_max_texture_sizes",
                            lambda: (16384, 2048), raising=False)
    monkeypatch.setattr("napari._vispy.layers.image.get_gl_extensions",
                        lambda: "GL_ARB_texture_float", raising=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item: napari's viewer fixture reads ``rep_call`` when it
    closes the viewer, which would otherwise hide a failing test behind an AttributeError."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
