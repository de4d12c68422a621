"""Classical denoisers on a dask.distributed cluster: equal to one process, resumable."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import infocus
from infocus._errors import InfocusInputError, OutputExistsError
from infocus.io import Image, read_image, write_image

pytest.importorskip(
    "distributed", reason="dask.distributed is an extra: pip install 'infocus[distributed]'")

from infocus.predict.distributed import denoise_dask, denoise_distributed  # noqa: E402


@pytest.fixture
def stack(tmp_path):
    """A TCYX Zarr of 4 frames, 2 channels: shot noise on blobs, and flat Gaussian noise."""
    rng = np.random.default_rng(11)
    y, x = np.mgrid[:40, :36]
    blobs = 40 + 200 * np.exp(-((y - 20) ** 2 + (x - 15) ** 2) / 60.0)
    shot = 2.0 * rng.poisson(np.broadcast_to(blobs, (4, 40, 36)) / 2.0) + 100
    flat = rng.normal(300.0, 8.0, (4, 40, 36))
    data = np.stack([shot, flat], axis=1).astype(np.float32)
    return write_image(tmp_path / "stack.zarr", Image(data, "TCYX")), data


def _range_error(got: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(got - reference).max() / (reference.max() - reference.min()))


@pytest.mark.parametrize(("method", "options"), [("gaussian", {}), ("nl_means", {}),
                                                  ("wavelet", {"max_shift": 1})])
def test_two_workers_denoise_like_one_process(method, options, stack, tmp_path, cluster):
    source, data = stack
    seen = []
    out = denoise_distributed(method, source, tmp_path / "out.zarr", scheduler=cluster,
                              progress=lambda done, total: seen.append((done, total)), **options)
    got = read_image(out)
    assert got.axes == "TCYX" and got.data.shape == data.shape
    assert _range_error(got.data, infocus.denoise(data, method, axes="TCYX", **options)) <= 1e-5
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr", "stack.zarr"]


def test_killed_run_resumes_with_its_recorded_plan(stack, tmp_path, cluster, monkeypatch):
    source, data = stack
    output = tmp_path / "out.zarr"

    def killed_after_three_blocks(done: int, total: int) -> None:
        if done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        denoise_distributed("gaussian", source, output, scheduler=cluster,
                            progress=killed_after_three_blocks)
    assert not output.exists()
    record = json.loads((tmp_path / ".out.zarr.progress" / "job.json").read_text())
    assert len(record["task"]["plan"]["channels"]) == 2
    with pytest.raises(OutputExistsError, match="pass --resume"):
        denoise_distributed("gaussian", source, output, scheduler=cluster)
    with pytest.raises(InfocusInputError, match="another model or method, input or settings"):
        denoise_distributed("gaussian", source, output, scheduler=cluster, resume=True,
                            sigma=2.0)

    import infocus.classical

    def no_second_plan(*args, **kwargs):
        raise AssertionError("a resumed run must reuse the recorded plan")

    monkeypatch.setattr(infocus.classical, "plan_denoising", no_second_plan)
    counts = []
    denoise_distributed("gaussian", source, output, scheduler=cluster, resume=True,
                        progress=lambda done, total: counts.append(done))
    assert counts[0] >= 3  # the finished blocks were kept
    assert _range_error(read_image(output).data,
                        infocus.denoise(data, "gaussian", axes="TCYX")) <= 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr", "stack.zarr"]


def test_dask_array_in_dask_array_out(stack):
    import dask.array as da

    _, data = stack
    lazy = denoise_dask("nl_means", da.from_array(data, chunks=(3, 2, 20, 20)), axes="TCYX",
                        h=5.0)
    assert isinstance(lazy, da.Array) and lazy.shape == data.shape
    assert _range_error(lazy.compute(scheduler="synchronous"),
                        infocus.denoise(data, "nl_means", axes="TCYX", h=5.0)) <= 1e-5


def test_bad_input_is_one_sentence(stack, tmp_path, cluster):
    source, _ = stack
    with pytest.raises(InfocusInputError, match="ending in .zarr"):
        denoise_distributed("gaussian", source, tmp_path / "out.tif", scheduler=cluster)
    with pytest.raises(InfocusInputError, match="Unknown denoiser"):
        denoise_distributed("gausian", source, tmp_path / "out.zarr", scheduler=cluster)
    with pytest.raises(InfocusInputError, match="has no option 'strength'"):
        denoise_distributed("gaussian", source, tmp_path / "out.zarr", scheduler=cluster,
                            strength=2)
    assert not (tmp_path / "out.zarr").exists()


def test_command_line_with_local_workers(stack, tmp_path):
    from infocus.cli import app

    source, data = stack
    runner = CliRunner()
    single = runner.invoke(app, ["denoise", str(source), "-o", str(tmp_path / "one.zarr"),
                                 "-m", "nl_means", "-p", "patch_distance=3"])
    assert single.exit_code == 0, single.output
    result = runner.invoke(app, ["denoise", str(source), "-o", str(tmp_path / "out.zarr"),
                                 "-m", "nl_means", "-p", "patch_distance=3", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "Quality check skipped for distributed denoising" in " ".join(result.output.split())
    assert _range_error(read_image(tmp_path / "out.zarr").data,
                        read_image(tmp_path / "one.zarr").data) <= 1e-5


@pytest.mark.parametrize(("flags", "message"), [
    (["-m", "gaussian", "--resume"], "give --workers N"),
    (["-m", "n2v", "--workers", "2"], "infocus predict MODEL IMAGE"),
    (["-m", "auto", "--workers", "2"], "not 'auto'"),
    (["-m", "gaussian", "--workers", "2", "-o", "out.tif"], "ending in .zarr"),
])
def test_command_line_refusals_are_one_sentence(flags, message, stack, tmp_path):
    from infocus.cli import app

    source, _ = stack
    output = ["-o", str(tmp_path / "out.zarr")] if "-o" not in flags else []
    flags = [str(tmp_path / f) if f.endswith(".tif") else f for f in flags]
    result = CliRunner().invoke(app, ["denoise", str(source), *output, *flags])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split()), result.output
