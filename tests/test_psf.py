"""Point-spread functions: checked, normalised, simulated from the optics."""

from __future__ import annotations

import numpy as np
import pytest

from infocus._errors import InfocusInputError
from infocus.io import Image, write_image
from infocus.psf import check_psf, read_psf, simulate_psf


def _fwhm_x(psf: np.ndarray) -> float:
    """Full width at half maximum along the last axis through the centre (linear interpolation)."""
    line = psf[tuple(n // 2 for n in psf.shape[:-1])]
    half = line.max() / 2
    above = np.flatnonzero(line >= half)
    left, right = above[0], above[-1]
    lo = left - 1 + (half - line[left - 1]) / (line[left] - line[left - 1])
    hi = right + (line[right] - half) / (line[right] - line[right + 1])
    return float(hi - lo)


def test_a_psf_is_normalised_and_its_noise_floor_clipped():
    raw = np.zeros((1, 5, 7))
    raw[0, 2, 3] = 8.0
    raw[0, 2, 2] = raw[0, 2, 4] = 4.0
    raw[0, 0, 0] = -0.5  # background noise below zero
    psf = check_psf(raw, 2)
    assert psf.shape == (5, 7) and psf.dtype == np.float32
    assert psf.sum() == pytest.approx(1.0) and psf.min() == 0.0
    assert psf[2, 3] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("psf", "message"),
    [
        (np.zeros((5, 5)), "all zero or mostly negative"),
        (-np.ones((5, 5)), "all zero or mostly negative"),
        (np.ones((4, 5)), "must be odd"),
        (np.full((5, 5), np.nan), "NaN"),
        (np.ones((3, 5, 5)), "3 axes but the images are 2-D"),
    ],
)
def test_unusable_psfs_are_refused_in_one_sentence(psf, message):
    with pytest.raises(InfocusInputError, match=message):
        check_psf(psf, 2)


def test_a_psf_file_is_read(tmp_path):
    psf = np.zeros((7, 7), np.float32)
    psf[3, 3] = 100.0
    psf[3, 2] = 50.0
    path = write_image(tmp_path / "psf.tif", Image(psf, "YX"))
    got = read_psf(path, 2)
    assert got.sum() == pytest.approx(1.0) and got[3, 3] == pytest.approx(2 / 3)


def test_gaussian_model_has_the_width_of_the_widefield_approximation():
    psf = simulate_psf("gaussian", ndim=2, na=1.0, wavelength=500, pixel_size=0.05)
    sigma = 0.21 * 0.5 / 1.0 / 0.05  # pixels (Zhang et al. 2007)
    assert _fwhm_x(psf) == pytest.approx(2.3548 * sigma, rel=0.05)
    assert np.unravel_index(psf.argmax(), psf.shape) == tuple(n // 2 for n in psf.shape)
    volume = simulate_psf("gaussian", ndim=3, na=1.0, wavelength=500, pixel_size=0.05,
                          z_step=0.2)
    assert volume.ndim == 3 and volume.shape[0] > 1 and volume.sum() == pytest.approx(1.0)


def test_gibson_lanni_models_from_psfmodels():
    pytest.importorskip("psfmodels", reason="the psf extra: pip install 'infocus[psf]'")
    widefield = simulate_psf("widefield", ndim=2, na=1.4, wavelength=520, pixel_size=0.04)
    confocal = simulate_psf("confocal", ndim=2, na=1.4, wavelength=520, pixel_size=0.04)
    # The Airy core: FWHM about 0.51 λ/NA; the confocal one is narrower.
    assert _fwhm_x(widefield) * 0.04 == pytest.approx(0.51 * 0.52 / 1.4, rel=0.15)
    assert _fwhm_x(confocal) < _fwhm_x(widefield)
    assert widefield.sum() == pytest.approx(1.0) and confocal.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"na": 1.6}, "exceeds the immersion medium"),
        ({"wavelength": 0.52}, "in nanometres"),
        ({"pixel_size": 0.0}, "pixel_size must be a positive number"),
        ({"model": "airy"}, "Unknown PSF model"),
    ],
)
def test_impossible_optics_are_refused(options, message):
    settings = {"model": "gaussian", "ndim": 2, "na": 1.4, "wavelength": 520, "pixel_size": 0.1,
                **options}
    model = settings.pop("model")
    with pytest.raises(InfocusInputError, match=message):
        simulate_psf(model, **settings)
