"""The loss curve of a training run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from matplotlib.image import imread

from infocus._errors import InfocusInputError, OutputExistsError
from infocus.training.figures import loss_curve_path, plot_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def history(train: list[float], val: list[float], **extra: list[float]) -> list[dict]:
    entries = [{"epoch": i + 1, "step": 100 * (i + 1), "train_loss": t, "val_loss": v}
               for i, (t, v) in enumerate(zip(train, val, strict=True))]
    for key, values in extra.items():
        for entry, value in zip(entries, values, strict=True):
            entry[key] = value
    return entries


def test_loss_curve_goes_inside_a_folder_and_beside_a_zip(tmp_path):
    assert loss_curve_path(tmp_path / "model") == tmp_path / "model" / "loss.png"
    assert loss_curve_path(tmp_path / "care.zip") == tmp_path / "care.loss.png"


@pytest.mark.parametrize("losses", [[1.0, 0.3, 0.1], [-1.5, -2.0, -2.2]],
                         ids=["positive (log scale)", "negative (linear)"])
def test_plot_history_writes_a_png(tmp_path, losses):
    path = plot_history(history(losses, [v * 1.1 for v in losses]), tmp_path / "loss.png",
                        title="n2v on test")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = imread(path).shape[:2]
    assert (width, height) == (640, 400)
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]


def test_validation_psnr_gets_its_own_panel(tmp_path):
    path = plot_history(history([1.0, 0.5], [1.1, 0.6], val_psnr=[25.0, 27.5]),
                        tmp_path / "loss.png")
    assert imread(path).shape[1] == 1280


def test_plot_history_skips_missing_values_and_refuses_an_empty_record(tmp_path):
    # A validation loss not measured (NaN) is left out, not drawn as a gap that breaks the scale.
    plot_history(history([1.0, 0.5], [math.nan, 0.6]), tmp_path / "a.png")
    with pytest.raises(InfocusInputError, match="no finite loss"):
        plot_history([{"epoch": 1}], tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists()


def test_plot_history_keeps_an_existing_file_unless_told(tmp_path: Path):
    path = tmp_path / "loss.png"
    path.write_bytes(b"mine")
    with pytest.raises(OutputExistsError):
        plot_history(history([1.0], [1.0]), path)
    assert path.read_bytes() == b"mine"
    plot_history(history([1.0], [1.0]), path, overwrite=True)
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_a_failed_drawing_leaves_nothing(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def half_written(self, path, **options):
        Path(path).write_bytes(PNG_SIGNATURE)  # a partial file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", half_written)
    with pytest.raises(OSError):
        plot_history(history([1.0], [1.0]), tmp_path / "loss.png")
    assert not list(tmp_path.iterdir())
