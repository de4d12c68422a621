"""BM3D/BM4D, including the benchmark the classical module must pass: BM3D after the VST beats
the best possible Gaussian filter on Poisson–Gaussian data."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from infocus._errors import InfocusInputError
from infocus.classical import bm3d, bm4d, choose_domain, gaussian
from infocus.noise import NoiseParams, scale_to_photons, simulate_poisson_gaussian

bm3d_package = pytest.importorskip("bm3d")
bm4d_package = pytest.importorskip("bm4d")

CAMERA = {"gain": 2.0, "offset": 100.0, "read_noise": 3.0}


def _psnr(estimate: np.ndarray, clean: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(estimate, np.float64) - clean) ** 2))
    return 10 * np.log10(float(clean.max() - clean.min()) ** 2 / mse)


def _oracle_gaussian_psnr(noisy: np.ndarray, expected: np.ndarray, noise: NoiseParams) -> float:
    """Best PSNR of a Gaussian filter whose width is chosen with the ground truth, applied
    either to the pixels or after the VST (whichever is better)."""
    widths = np.geomspace(0.3, 6.0, 25)
    on_pixels = max(_psnr(ndi.gaussian_filter(noisy, s), expected) for s in widths)
    after_vst = max(
        _psnr(gaussian(noisy, noise=noise, sigma=float(s), vst=True), expected) for s in widths
    )
    return max(on_pixels, after_vst)


def _bm3d_beats_oracle_gaussian(
    clean: np.ndarray, photons: float, seed: int
) -> tuple[float, float]:
    noisy, noise = simulate_poisson_gaussian(clean, photons=photons, rng=seed, **CAMERA)
    expected = CAMERA["gain"] * scale_to_photons(clean, photons) + CAMERA["offset"]
    assert choose_domain(noisy).vst  # the estimated noise is signal-dependent
    return _psnr(bm3d(noisy), expected), _oracle_gaussian_psnr(noisy, expected, noise)


def nuclei_phantom(shape: tuple[int, int], rng: np.random.Generator, n: int = 14) -> np.ndarray:
    """A nucleus-like image in [0, 1]: textured ellipses with sharp edges, blurred by a PSF.

    Unlike ``blobs_image`` (sums of Gaussians, which a Gaussian filter suits perfectly), it has
    edges, the structure that separates edge-preserving denoisers from linear filters.
    """
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    texture = ndi.gaussian_filter(rng.normal(size=shape), 4.0)
    texture /= texture.std()
    image = np.full(shape, 0.08)
    for _ in range(n):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        ry, rx = rng.uniform(6, 18, 2)
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dy * np.cos(angle) + dx * np.sin(angle)) / ry
        v = (-dy * np.sin(angle) + dx * np.cos(angle)) / rx
        inside = u**2 + v**2 <= 1
        image[inside] = rng.uniform(0.3, 1.0) * (1 + 0.15 * texture[inside])
    image = np.clip(ndi.gaussian_filter(image, 1.0), 0, None)
    return (image / image.max()).astype(np.float32)


@pytest.mark.parametrize("photons", [10.0, 100.0])
def test_bm3d_with_vst_beats_the_oracle_gaussian_on_nuclei_phantom(rng, photons):
    clean = nuclei_phantom((128, 128), rng)
    ours, oracle = _bm3d_beats_oracle_gaussian(clean, photons, seed=1)
    assert ours > oracle + 1.0


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("photons", [10.0, 100.0])
def test_bm3d_with_vst_beats_the_oracle_gaussian_on_real_nuclei(shared_data, photons):
    image = tifffile.imread(shared_data / "stardist_dsb2018_nuclei" / "img2d.tif")
    # The image carries its own noise (about 5 grey levels); 2x2 binning halves it, so that the
    # reference is clean enough to score against at 100 photons.
    clean = image.astype(np.float32).reshape(256, 2, 256, 2).mean(axis=(1, 3))
    ours, oracle = _bm3d_beats_oracle_gaussian(clean, photons, seed=2)
    assert ours > oracle


def test_blobs_favour_the_gaussian_filter(rng, make_blobs):
    # Documented limitation: on sums of Gaussians the best linear filter is near-optimal, so
    # BM3D does not beat the oracle there (which is why the benchmark above uses edges).
    clean = make_blobs((128, 128), rng, n_blobs=40)
    ours, oracle = _bm3d_beats_oracle_gaussian(clean, 100.0, seed=1)
    assert oracle - 1.0 < ours < oracle + 0.5


def test_explicit_sigma_and_profile_reach_the_package(rng, reproducible_block_matching):
    noisy = rng.normal(10.0, 1.0, (48, 48)).astype(np.float32)
    out = bm3d(noisy, noise=NoiseParams.gaussian(1.0), sigma_psd=0.7, profile="high")
    assert reproducible_block_matching.calls == [("bm3d", 0.7, "high", (48, 48))]
    expected = reproducible_block_matching.bm3d(noisy, sigma_psd=0.7, profile="high")
    np.testing.assert_array_equal(out, expected.astype(np.float32))


def test_bm4d_on_a_2d_image_is_bm3d(rng, reproducible_block_matching):
    noisy = rng.normal(10.0, 1.0, (48, 48)).astype(np.float32)
    noise = NoiseParams.gaussian(1.0)
    np.testing.assert_array_equal(bm4d(noisy, noise=noise), bm3d(noisy, noise=noise))
    assert [call[0] for call in reproducible_block_matching.calls] == ["bm3d", "bm3d"]


def test_bm4d_filters_zyx_volumes_in_the_packages_yxz_order(rng, reproducible_block_matching):
    volume = rng.normal(10.0, 1.0, (5, 32, 24)).astype(np.float32)
    out = bm4d(volume, axes="ZYX", noise=NoiseParams.gaussian(1.0))
    assert reproducible_block_matching.calls[0][3] == (32, 24, 5)
    # The stand-in filters Y, X and Z with different widths, so a wrong order would show.
    expected = np.moveaxis(
        reproducible_block_matching.bm4d(np.moveaxis(volume, 0, -1), sigma_psd=1.0), -1, 0
    )
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_the_real_packages_agree_with_the_stand_in_calls(rng):
    # The one comparison with the compiled code: the same call through infocus and directly
    # agree to the package's own run-to-run spread, judged on the mean (ties flip at a few
    # pixels by up to ~3 % of sigma, so the maximum is not a property of the code).
    noisy = rng.normal(10.0, 1.0, (48, 48)).astype(np.float32)
    out = bm3d(noisy, noise=NoiseParams.gaussian(1.0), sigma_psd=0.7, profile="high")
    expected = bm3d_package.bm3d(noisy, sigma_psd=0.7, profile="high")
    assert float(np.mean(np.abs(out - expected))) < 0.005


@pytest.mark.parametrize(("method", "profile"), [(bm3d, "lc"), (bm3d, "refilter"), (bm4d, "high")])
def test_unknown_profile(method, profile):
    with pytest.raises(InfocusInputError, match="profile"):
        method(np.ones((16, 16)), noise=NoiseParams.gaussian(1.0), profile=profile)


@pytest.mark.parametrize("method", [bm3d, bm4d])
def test_bad_sigma_psd(method):
    with pytest.raises(InfocusInputError, match="sigma_psd"):
        method(np.ones((16, 16)), noise=NoiseParams.gaussian(1.0), sigma_psd=-1.0)


@pytest.mark.parametrize(
    ("method", "axes", "package"), [(bm3d, "YX", "bm3d"), (bm4d, "ZYX", "bm4d")]
)
def test_missing_package_says_how_to_install(monkeypatch, method, axes, package):
    module = importlib.import_module("infocus.classical.bm3d")
    real_import = module.importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name == package:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(module.importlib, "import_module", fake_import)
    image = np.ones((8, 16, 16)) if axes == "ZYX" else np.ones((16, 16))
    with pytest.raises(ImportError, match=r"pip install 'infocus\[bm3d\]'"):
        method(image, axes=axes, noise=NoiseParams.gaussian(1.0))
