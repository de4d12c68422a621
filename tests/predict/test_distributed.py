"""Prediction on a dask.distributed cluster: equal to one process, resumable, Zarr only."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import tiny_model
from infocus._errors import InfocusInputError, OutputExistsError
from infocus.io import Image, read_image, write_image

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is an extra: pip install 'infocus[distributed]'")

from infocus.predict.distributed import denoise_dask, predict_distributed  # noqa: E402


@pytest.fixture
def files(tmp_path):
    model = tiny_model()
    path = model.save(tmp_path / "model")
    rng = np.random.default_rng(3)
    stack = (rng.poisson(30, (5, 90, 77)) * 2 + 100).astype(np.float32)
    source = write_image(tmp_path / "stack.zarr", Image(stack, "TYX"))
    return model, path, source, stack


def _range_error(got: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(got - reference).max() / (reference.max() - reference.min()))


def test_two_workers_predict_like_one_process(files, tmp_path, cluster):
    model, path, source, stack = files
    seen = []
    out = predict_distributed(path, source, tmp_path / "out.zarr", scheduler=cluster,
                              progress=lambda done, total: seen.append((done, total)))
    got = read_image(out)
    assert got.axes == "TYX" and got.data.shape == stack.shape
    assert _range_error(got.data, model.denoise(stack, axes="TYX")) <= 1e-5
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)
    # Only the output is left: no partial store, no progress records.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out.zarr", "stack.zarr"]


def test_a_model_object_and_tiles_chosen_per_worker_give_the_same_result(files, tmp_path,
                                                                        cluster):
    model, _, source, stack = files
    out = predict_distributed(model, source, tmp_path / "out.zarr", scheduler=cluster,
                              tile_size=48)
    assert _range_error(read_image(out).data, model.denoise(stack, axes="TYX")) <= 1e-5


def test_killed_prediction_resumes_and_matches(files, tmp_path, cluster):
    model, path, source, stack = files
    output = tmp_path / "out.zarr"

    def killed_after_two_blocks(done: int, total: int) -> None:
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_distributed(path, source, output, scheduler=cluster,
                            progress=killed_after_two_blocks)
    assert not output.exists()
    assert (tmp_path / ".out.zarr.partial").is_dir()
    with pytest.raises(OutputExistsError, match="pass --resume"):
        predict_distributed(path, source, output, scheduler=cluster)
    with pytest.raises(InfocusInputError, match="another model or method, input or settings"):
        predict_distributed(path, source, output, scheduler=cluster, resume=True, tta=True)
    counts = []
    predict_distributed(path, source, output, scheduler=cluster, resume=True,
                        progress=lambda done, total: counts.append(done))
    assert counts[0] >= 2  # the finished blocks were kept
    assert _range_error(read_image(output).data, model.denoise(stack, axes="TYX")) <= 1e-5
    assert not (tmp_path / ".out.zarr.partial").exists()
    assert not (tmp_path / ".out.zarr.progress").exists()


def test_each_worker_prepares_the_model_once_and_exports_by_the_stack_size(files, tmp_path,
                                                                          cluster):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model, path, source, stack = files

    def count_preparations(dask_worker, threshold):
        # Runs in each worker process: count model loads and network preparations, and lower
        # the size from which ``auto`` exports to ONNX below the stack's (5 x 90 x 77 pixels)
        # but above one block's (90 x 77).
        import infocus.predict.backends as backends
        import infocus.predict.distributed as module
        import infocus.predict.model as model_module

        module._worker_model.cache_clear()
        counts = {"loads": 0, "runners": []}
        load, make = model_module.load_model, model_module.make_runner

        def counting_load(*args, **kwargs):
            counts["loads"] += 1
            return load(*args, **kwargs)

        def counting_make(*args, **kwargs):
            runner, backend = make(*args, **kwargs)
            counts["runners"].append(backend)
            return runner, backend

        dask_worker.infocus_saved = (load, make, backends.ONNX_MIN_PIXELS)
        dask_worker.infocus_counts = counts
        model_module.load_model, model_module.make_runner = counting_load, counting_make
        backends.ONNX_MIN_PIXELS = threshold

    def counted(dask_worker):
        import infocus.predict.backends as backends
        import infocus.predict.distributed as module
        import infocus.predict.model as model_module

        model_module.load_model, model_module.make_runner, backends.ONNX_MIN_PIXELS = \
            dask_worker.infocus_saved
        module._worker_model.cache_clear()
        return dask_worker.infocus_counts

    with distributed.Client(cluster) as client:
        client.run(count_preparations, threshold=stack[0].size + 1)
        try:
            out = predict_distributed(path, source, tmp_path / "out.zarr", scheduler=cluster)
        finally:
            counts = list(client.run(counted).values())
    assert sum(worker["loads"] for worker in counts) >= 1
    for worker in counts:  # once per worker, not once per block (5 blocks)
        assert worker["loads"] <= 1
        assert worker["runners"] in ([], ["onnxruntime"])
    assert _range_error(read_image(out).data, model.denoise(stack, axes="TYX")) <= 1e-4


def test_tasks_return_no_pixels_and_the_scheduler_keeps_nothing(files, tmp_path, cluster):
    _, path, source, stack = files
    with distributed.Client(cluster) as client, distributed.get_task_stream(client) as stream:
        predict_distributed(path, source, tmp_path / "out.zarr", scheduler=cluster)
        left = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
    assert len(stream.data) == len(stack)
    block_bytes = stack[0].nbytes
    # Each task's result is a count of clipped pixels, never a block of the image.
    assert all(record["nbytes"] < block_bytes // 100 for record in stream.data)
    assert left == 0


def test_local_workers_keep_the_adaptive_malloc_threshold():
    import os

    from infocus.predict.distributed import _DaskClient

    # dask's default MALLOC_TRIM_THRESHOLD_ made every large array a fresh zeroed mapping.
    with _DaskClient(distributed, 1, None) as client:
        environ = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert list(environ.values()) == [None]


def test_only_zarr_outputs(files, tmp_path, cluster):
    _, path, source, _ = files
    with pytest.raises(InfocusInputError, match="ending in .zarr"):
        predict_distributed(path, source, tmp_path / "out.tif", scheduler=cluster)


def test_no_scheduler_at_the_address_is_one_sentence(files, tmp_path, monkeypatch):
    import infocus.predict.distributed as module

    monkeypatch.setattr(module, "CONNECT_TIMEOUT", "1s")
    _, path, source, _ = files
    with pytest.raises(InfocusInputError, match="No dask scheduler answered"):
        predict_distributed(path, source, tmp_path / "out.zarr", scheduler="tcp://127.0.0.1:9")


def test_dask_array_in_dask_array_out(files):
    import dask.array as da

    model, _, _, stack = files
    lazy = denoise_dask(model, da.from_array(stack, chunks=(2, 40, 40)), axes="TYX")
    assert isinstance(lazy, da.Array) and lazy.shape == stack.shape
    assert _range_error(lazy.compute(), model.denoise(stack, axes="TYX")) <= 1e-5


def test_command_line_with_local_workers(files, tmp_path):
    from infocus.cli import app

    model, path, source, stack = files
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(path), str(source), "-o",
                                 str(tmp_path / "out.zarr"), "--workers", "2"])
    assert result.exit_code == 0, result.output
    # The summary would read the whole stack into this process: skipped, and said so.
    assert "Quality check skipped for distributed prediction" in result.output
    assert _range_error(read_image(tmp_path / "out.zarr").data,
                        model.denoise(stack, axes="TYX")) <= 1e-5
    result = runner.invoke(app, ["predict", str(path), str(source), "-o",
                                 str(tmp_path / "again.zarr"), "--resume"])
    assert result.exit_code == 2 and "--workers" in result.output
