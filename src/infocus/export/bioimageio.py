"""BioImage Model Zoo packages (bioimage.io model spec 0.5): written from infocus models,
and read back, ours or made by other tools, to denoise with.

Written with ``bioimageio.spec`` (the zoo's own description and packaging library) and tested
with ``bioimageio.core``; both come with ``pip install 'infocus[bioimageio]'``.

A package written here holds:

- TorchScript weights (what deepImageJ runs) and ONNX weights of the network alone, on
  normalised data (:class:`infocus.export.ExportedGraph.network`);
- our normalisation as the spec's steps: ``fixed_zero_mean_unit_variance`` with the training
  data's per-channel mean and standard deviation before the network, ``scale_linear`` with the
  target's standard deviation (gain) and mean (offset) after it, so the package maps camera
  units to camera units as ``infocus predict`` does;
- the output halo (the network's receptive radius), so tiled prediction in other tools is
  exact, and sizes as multiples of the network's ``size_multiple``;
- a test input and the output infocus's exported graph gives for it, a cover image
  (noisy | denoised), a README that says what the package leaves out of infocus's prediction,
  the method's paper and the training provenance (``config.infocus``).

A package is read with ``bioimageio.core`` running its own pre- and post-processing. Of its
weights, infocus runs the first that needs no Python code from the package (a PyTorch state
dict runs only when its network's library is installed, e.g. ``careamics``). Packages that take
one fixed input size, as CAREamics writes them, are run on overlapping tiles of that size.

Reference: bioimage.io model description format 0.5, https://bioimage.io/docs (spec),
Ouyang et al., "BioImage Model Zoo: a community-driven resource for accessible deep learning
in bioimage analysis", bioRxiv 2022.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import io
import itertools
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from infocus._errors import InfocusInputError
from infocus.export._graph import ExportedGraph, onnx_bytes, torchscript_bytes

if TYPE_CHECKING:
    from infocus.predict.model import TrainedModel

__all__ = ["BioimageioDenoiser", "is_package", "load_package", "write_package"]

_INSTALL = "pip install 'infocus[bioimageio]'"
#: Tags that mark a package as an image restoration model we may run as a denoiser.
_DENOISING_TAGS = frozenset({"denoising", "denoise", "restoration", "image-restoration", "n2v",
                             "noise2void", "care", "careamics"})
#: Edge of the test input per spatial axis (2-D, 3-D), before rounding to the size multiple.
_TEST_EDGE = {2: 128, 3: 32}


def _require() -> None:
    missing = [name for name in ("bioimageio.spec", "bioimageio.core", "onnx")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise InfocusInputError(
            f"bioimage.io packages need {', '.join(missing)}; install them with {_INSTALL}."
        )


# ------------------------------------------------------------------------------------ write
def write_package(
    model: TrainedModel,
    graph: ExportedGraph,
    path: Path,
    *,
    overwrite: bool = False,
    sample: Any = None,
    sample_axes: str | None = None,
    authors: tuple[str, ...] = (),
    license: str = "CC-BY-4.0",
    check: bool = True,
) -> Path:
    """Write ``model`` as a bioimage.io package ``path`` (a ``.zip``), atomically.

    Parameters
    ----------
    model, graph : TrainedModel and its :func:`~infocus.export.exported_graph`
    path : Path
        The ``.zip`` to write.
    sample, sample_axes : optional
        The image the test input is cut from (in camera units; default: the embedded sample
        rescaled to the model's training intensities).
    authors : tuple of str
        The package's authors (default: "infocus user" and a note to edit it).
    license : str
        SPDX identifier of the weights' licence.
    check : bool
        Run ``bioimageio.core``'s model test (both weight formats reproduce the test output,
        at several sizes and batch sizes) on the package before it is put in place.

    Raises
    ------
    InfocusInputError
        The model test failed (its first failing check is quoted); nothing is written.
    """
    _require()
    from bioimageio.spec import save_bioimageio_package

    from infocus.io._atomic import atomic_output

    if path.suffix.lower() != ".zip":
        raise InfocusInputError(
            f"A bioimage.io package is a .zip file; give an output name ending in .zip "
            f"(got {path.name})."
        )
    test_input = _test_input(model, graph, sample, sample_axes)
    with torch.no_grad():
        test_output = graph.module(torch.from_numpy(test_input)).numpy()
    with tempfile.TemporaryDirectory(prefix="infocus-bioimageio-") as folder:
        root = Path(folder)
        with _quiet():  # the spec library's notes on optional fields
            description = _description(model, graph, root, test_input, test_output, authors,
                                        license)
        with atomic_output(path, overwrite=overwrite, suffix=".zip") as temporary:
            with _quiet():
                save_bioimageio_package(description, output_path=temporary)
            if check:
                _check_package(temporary)
    return path


def _check_package(path: Path) -> None:
    """Raise unless ``bioimageio.core``'s model test passes on the package at ``path``."""
    from bioimageio.core import test_model

    with _quiet():
        summary = test_model(path)
    if summary.status != "passed":
        failed = next((d for d in summary.details if d.status == "failed"), None)
        reason = (f"{failed.name}: {failed.errors[0].msg if failed.errors else 'failed'}"
                  if failed else summary.status)
        raise InfocusInputError(
            f"The exported package failed bioimageio.core's model test ({_one_line(reason)[:300]}"
            "); nothing was written. Please report this with the model.")


@contextlib.contextmanager
def _quiet(*, collect: bool = True) -> Iterator[None]:
    """Silence bioimageio.core's progress bars (they write to stderr; ours is the CLI's) and
    library warnings (TorchScript's deprecation notice among them) for one call; with
    ``collect``, files the libraries left open are closed at the end, while their warnings are
    still ignored (a full garbage collection: about half a second, so once per image)."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield
        if collect:
            gc.collect()


def _test_input(model: TrainedModel, graph: ExportedGraph, sample: Any,
                sample_axes: str | None) -> np.ndarray:
    """``(1, C, *spatial)`` float32: a central crop of ``sample`` (or the embedded sample
    rescaled to the training data's mean and spread), sized to the network."""
    ndim = len(graph.spatial)
    edge = max(_round_up(_TEST_EDGE[ndim], graph.size_multiple),
               _round_up(2 * _package_halo(graph) + 1, graph.size_multiple))
    if sample is None:
        block = _embedded_sample(model, graph, edge)
    else:
        block = _crop_sample(np.asarray(sample, dtype=np.float32), sample_axes, graph, edge)
    return np.ascontiguousarray(block[None], dtype=np.float32)


def _embedded_sample(model: TrainedModel, graph: ExportedGraph, edge: int) -> np.ndarray:
    from infocus.demo import load_sample

    clean = load_sample().astype(np.float64)
    y0, x0 = (max(0, (n - edge) // 2) for n in clean.shape)
    plane = clean[y0:y0 + edge, x0:x0 + edge]
    plane = np.pad(plane, [(0, edge - plane.shape[0]), (0, edge - plane.shape[1])], "reflect")
    if len(graph.spatial) == 3:  # a volume of shifted planes: structure changes along Z
        plane = np.stack([np.roll(plane, z, axis=1) for z in range(edge)])
    standard = (plane - plane.mean()) / max(plane.std(), 1e-12)
    mean = np.resize(np.asarray(model.input_norm.mean), graph.channels)
    std = np.resize(np.asarray(model.input_norm.std), graph.channels)
    shape = (-1,) + (1,) * standard.ndim
    return (mean.reshape(shape) + std.reshape(shape) * standard[None]).astype(np.float32)


def _crop_sample(sample: np.ndarray, axes: str | None, graph: ExportedGraph,
                 edge: int) -> np.ndarray:
    from infocus.axes import check_axes, default_axes

    axes = check_axes(axes, sample.shape) if axes else default_axes(sample.shape)
    if not np.isfinite(sample).all():
        raise InfocusInputError("The sample image contains NaN or infinite pixels; give "
                                "another sample or none.")
    missing = [a for a in graph.spatial if a not in axes]
    if missing:
        raise InfocusInputError(
            f"The sample's axes {axes!r} lack {''.join(missing)}, which the model needs; pass "
            "the sample's --axes.")
    keep = graph.spatial if graph.channels == 1 or "C" not in axes else "C" + graph.spatial
    index = tuple(slice(None) if a in keep else sample.shape[i] // 2
                  for i, a in enumerate(axes))
    reduced_axes = [a for a in axes if a in keep]
    block = np.transpose(sample[index], [reduced_axes.index(a) for a in keep])
    if "C" not in keep:
        block = np.repeat(block[None], graph.channels, axis=0)
    if block.shape[0] != graph.channels:
        raise InfocusInputError(
            f"The sample has {block.shape[0]} channels but the model takes {graph.channels}; "
            "give a sample with the model's channels.")
    starts = [max(0, (n - edge) // 2) for n in block.shape[1:]]
    block = block[(slice(None),) + tuple(slice(s, s + edge) for s in starts)]
    pad = [(0, 0)] + [(0, edge - n) for n in block.shape[1:]]
    return np.pad(block, pad, mode="reflect" if min(block.shape[1:]) > 1 else "edge")


def _package_halo(graph: ExportedGraph) -> int:
    """The receptive radius rounded up to the size multiple (see :func:`_description`)."""
    return _round_up(graph.receptive_radius, graph.size_multiple)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _description(model: TrainedModel, graph: ExportedGraph, root: Path, test_input: np.ndarray,
                 test_output: np.ndarray, authors: tuple[str, ...], license: str) -> Any:
    """The spec 0.5 model description, with its files written under ``root``."""
    import bioimageio.spec.model.v0_5 as spec
    from bioimageio.spec.common import FileDescr

    np.save(root / "test_input.npy", test_input)
    np.save(root / "test_output.npy", test_output)
    example = graph.example()
    (root / "weights_torchscript.pt").write_bytes(torchscript_bytes(graph.network, example))
    (root / "weights.onnx").write_bytes(onnx_bytes(graph.network, example, graph.spatial))
    _cover(test_input, test_output, root / "cover.png")
    scheme = model.scheme
    (root / "README.md").write_text(_readme(model, graph))

    channel_names = [spec.Identifier(f"channel{c}") for c in range(graph.channels)]
    # The halo is the receptive radius rounded up to the size multiple: tiles then start on
    # the network's pooling grid, which a U-Net's output depends on, so tiled prediction in
    # other tools equals infocus's away from the image border. A tile must be wider than its
    # two halos to keep any pixel.
    halo = _package_halo(graph)
    smallest = _round_up(2 * halo + 1, graph.size_multiple)
    # A model trained on TYX blocks convolves along time as along space; the spec names it.
    names = {a: spec.AxisId("time" if a == "T" else a.lower()) for a in graph.spatial}
    spatial_in = [(spec.TimeInputAxis if a == "T" else spec.SpaceInputAxis)(
        id=names[a], size=spec.ParameterizedSize(min=smallest, step=graph.size_multiple))
        for a in graph.spatial]
    spatial_out = [(spec.TimeOutputAxisWithHalo if a == "T" else spec.SpaceOutputAxisWithHalo)(
        id=names[a], halo=halo,
        size=spec.SizeReference(tensor_id=spec.TensorId("input"), axis_id=names[a]))
        for a in graph.spatial]
    mean_in, std_in = (np.resize(np.asarray(v, float), graph.channels).tolist()
                       for v in (model.input_norm.mean, model.input_norm.std))
    mean_out, std_out = (np.resize(np.asarray(v, float), graph.channels).tolist()
                         for v in (model.target_norm.mean, model.target_norm.std))
    channel = spec.AxisId("channel")
    inputs = [spec.InputTensorDescr(
        id=spec.TensorId("input"),
        description="Noisy image in camera units (the training data's units).",
        axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=channel_names), *spatial_in],
        test_tensor=FileDescr(source=root / "test_input.npy"),
        preprocessing=[spec.FixedZeroMeanUnitVarianceDescr(
            kwargs=spec.FixedZeroMeanUnitVarianceAlongAxisKwargs(mean=mean_in, std=std_in,
                                                                 axis=channel))],
    )]
    outputs = [spec.OutputTensorDescr(
        id=spec.TensorId("denoised"),
        description="Denoised image in camera units.",
        axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=channel_names), *spatial_out],
        test_tensor=FileDescr(source=root / "test_output.npy"),
        postprocessing=[spec.ScaleLinearDescr(
            kwargs=spec.ScaleLinearAlongAxisKwargs(axis=channel, gain=std_out,
                                                   offset=mean_out))],
    )]
    import onnx

    weights = spec.WeightsDescr(
        torchscript=spec.TorchscriptWeightsDescr(
            source=root / "weights_torchscript.pt",
            pytorch_version=spec.Version(torch.__version__.split("+")[0])),
        onnx=spec.OnnxWeightsDescr(source=root / "weights.onnx",
                                   opset_version=_opset(root / "weights.onnx", onnx),
                                   parent="torchscript"),
    )
    citation = scheme.citation or {"text": scheme.summary, "url": "https://bioimage.io"}
    cite = [spec.CiteEntry(text=citation["text"], **({"doi": citation["doi"]}
                                                     if "doi" in citation
                                                     else {"url": citation["url"]}))]
    return spec.ModelDescr(
        name=f"infocus {model.method} denoiser",
        description=_one_line(scheme.summary),
        authors=[spec.Author(name=name) for name in (authors or ("infocus user",))],
        cite=cite,
        license=license,
        documentation=FileDescr(source=root / "README.md"),
        covers=[FileDescr(source=root / "cover.png")],
        tags=sorted({"denoising", "infocus", model.method, f"{len(graph.spatial)}d",
                     "fluorescence-light-microscopy", "pytorch", "torchscript", "onnx"}),
        inputs=inputs,
        outputs=outputs,
        weights=weights,
        config={"infocus": _provenance(model, graph)},
    )


def _opset(path: Path, onnx: Any) -> int:
    graph = onnx.load(str(path), load_external_data=False)
    return int(max(entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx")))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _provenance(model: TrainedModel, graph: ExportedGraph) -> dict[str, Any]:
    import json

    from infocus import __version__

    config = json.loads(json.dumps(model._config_dict(), default=str))
    return {"infocus_version": __version__, "method": model.method,
            "left_out": graph.limits, "model_config": config}


def _readme(model: TrainedModel, graph: ExportedGraph) -> str:
    scheme = model.scheme
    training = model.config
    left = "\n".join(f"- {line}" for line in graph.limits) or (
        "- Nothing: infocus's prediction of this model is the network with its normalisation.")
    return f"""# infocus {model.method} denoiser

{_one_line(scheme.summary)}

Trained with infocus on {graph.spatial} images ({graph.channels} channel(s)); training:
{training.steps} steps, patches of {training.patch_size} pixels, batch {training.batch_size}.
The full training configuration and provenance are in `config.infocus` of rdf.yaml.

## Input and output

`input`: `(batch, channel, {', '.join(a.lower() for a in graph.spatial)})`, float32, in the camera
units of the training data (no rescaling needed; the package normalises with the training
data's mean and standard deviation). Every spatial size must be a multiple of
{graph.size_multiple}. `denoised`: the same shape and units. Tiles must overlap by at least
{2 * _package_halo(graph)} pixels (the halo is {_package_halo(graph)} on each side) and start
on multiples of {graph.size_multiple} for tiled prediction to equal untiled prediction; the
halo declared in rdf.yaml does both for bioimage.io tools. Within the halo of the image
border, tools that pad the image (bioimage.io does) differ slightly from infocus, whose
network pads its features with zeros.

## What this package leaves out of infocus's prediction

{left}

With infocus installed, `infocus predict MODEL image.tif -o out.tif` runs the original
model, all steps included.
"""


def _cover(test_input: np.ndarray, test_output: np.ndarray, path: Path) -> None:
    """Noisy | denoised, both at the noisy image's 1-99.8 % display range (2:1 PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def plane(array: np.ndarray) -> np.ndarray:
        image = array[0, 0]
        return image[image.shape[0] // 2] if image.ndim == 3 else image

    noisy, denoised = plane(test_input), plane(test_output)
    low, high = np.percentile(noisy, [1, 99.8])
    figure = Figure(figsize=(4, 2), dpi=128)
    FigureCanvasAgg(figure)
    for k, (image, title) in enumerate(((noisy, "noisy"), (denoised, "denoised"))):
        axis = figure.add_axes((k / 2, 0, 0.5, 1))
        axis.imshow(image, cmap="magma", vmin=low, vmax=high, interpolation="nearest")
        axis.text(0.03, 0.95, title, color="white", transform=axis.transAxes, va="top",
                  fontsize=8)
        axis.set_axis_off()
    figure.savefig(path, format="png")


# ------------------------------------------------------------------------------------- read
def is_package(path: str | Path) -> bool:
    """Whether ``path`` looks like a bioimage.io package: a .zip holding ``rdf.yaml`` (or
    ``bioimageio.yaml``), or such a YAML file itself."""
    import zipfile

    path = Path(path)
    if path.is_file() and path.name.endswith(("rdf.yaml", "bioimageio.yaml")):
        return True
    if not (path.is_file() and zipfile.is_zipfile(path)):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith(("rdf.yaml", "bioimageio.yaml")) for name in archive.namelist())


@dataclass
class BioimageioDenoiser:
    """A bioimage.io denoising model run through ``bioimageio.core`` (its own pre- and
    post-processing and tiling), with infocus's ``denoise(image, axes=...)``."""

    description: Any
    source: Path
    #: The unpacked package, deleted with this object.
    unpacked: Path | None = None
    #: The package's weights run here (see :func:`_runnable_weights`); None: bioimageio.core's
    #: own choice.
    weights_format: str | None = None

    def __post_init__(self) -> None:
        if self.unpacked is not None:
            weakref.finalize(self, shutil.rmtree, self.unpacked, ignore_errors=True)

    @property
    def method(self) -> str:
        return f"bioimage.io model {self.description.name!r}"

    def report(self) -> list[str]:
        """Notes on how the package was run that the user should know."""
        tile = _fixed_tile(self.description.inputs[0])
        if not tile:
            return []
        margin = max(_tile_margins(tile, _halo(self.description)).values())
        return [f"The package takes tiles of exactly {'x'.join(map(str, tile.values()))} "
                f"pixels; infocus overlapped them and dropped {margin} pixels at inner tile "
                "edges."]

    def denoise(self, image: Any, *, axes: str | None = None,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Denoise every 2-D/3-D block of ``image`` (other axes looped over), same shape."""
        from infocus.axes import check_axes, default_axes

        array = np.asarray(image, dtype=np.float32)
        axes = check_axes(axes, array.shape) if axes else default_axes(array.shape)
        if not np.isfinite(array).all():
            raise InfocusInputError("The image contains NaN or infinite pixels; replace them "
                                    "(e.g. with the background value) first.")
        model_axes = _model_axes(self.description)
        spatial = "".join(a for a in model_axes if a in "TZYX")
        missing = [a for a in spatial if a not in axes]
        if missing:
            raise InfocusInputError(
                f"This bioimage.io model works on {spatial} but the image axes {axes!r} lack "
                f"{''.join(missing)}; pass the right --axes.")
        channels = _channel_count(self.description)
        use_channels = "C" in model_axes and "C" in axes and channels > 1
        if channels > 1 and not use_channels:
            raise InfocusInputError(
                f"This bioimage.io model takes {channels} channels but the image axes "
                f"{axes!r} have no C; pass axes with C.")
        if use_channels and array.shape[axes.index("C")] != channels:
            raise InfocusInputError(
                f"This bioimage.io model takes {channels} channels but the image has "
                f"{array.shape[axes.index('C')]}; give an image with the model's channels.")
        block_axes = ("C" if use_channels else "") + spatial
        loop_axes = [a for a in axes if a not in block_axes]
        moved = np.transpose(array, [axes.index(a) for a in loop_axes + list(block_axes)])
        lead = moved.shape[: len(loop_axes)]
        flat = moved.reshape((-1,) + moved.shape[len(loop_axes):])
        result = np.empty_like(flat)
        pipeline = self._pipeline()
        for k in range(flat.shape[0]):
            result[k] = self._predict_block(pipeline, flat[k], use_channels)
            if progress is not None:
                progress(k + 1, flat.shape[0])
        del pipeline
        with _quiet():
            pass  # what the blocks left open is closed now, quietly
        restored = result.reshape(lead + result.shape[1:])
        order = loop_axes + list(block_axes)
        return np.transpose(restored, [order.index(a) for a in axes])

    __call__ = denoise

    def _pipeline(self) -> Any:
        from bioimageio.core import create_prediction_pipeline

        with _quiet():
            return create_prediction_pipeline(self.description,
                                              weights_format=self.weights_format)

    def _predict_block(self, pipeline: Any, block: np.ndarray, use_channels: bool) -> np.ndarray:
        """One ``([C,] *spatial)`` block through the package: bioimageio.core tiles it with the
        model's halo (a package with a fixed input size is tiled here, see
        :meth:`_predict_fixed_tiles`); a side shorter than the model's smallest tile is first
        extended by mirroring (and cropped back)."""
        from bioimageio.core import Tensor, predict

        descr = self.description.inputs[0]
        names = [str(axis.id) for axis in descr.axes]
        data = block if use_channels else block[None]
        halo = _halo(self.description)
        fixed = _fixed_tile(descr)
        smallest = _smallest_tile(descr, halo)
        spatial = [n for n in names if n not in ("batch", "channel")]
        pad = [(0, 0)] + [(0, max(0, (fixed[name] if fixed else smallest) - n))
                          for name, n in zip(spatial, data.shape[1:], strict=True)]
        padded = np.pad(data, pad, mode="symmetric") if any(p for _, p in pad) else data
        canonical = ["batch", "channel", *spatial]
        array = padded[None]
        if "channel" not in names:
            array = array[:, 0]
            canonical.remove("channel")
        if "batch" not in names:
            array = array[0]
            canonical.remove("batch")
        tensor = Tensor(np.transpose(array, [canonical.index(n) for n in names]),
                        dims=tuple(names))
        with _quiet(collect=False):  # once per image, in denoise()
            if fixed:
                result = self._predict_fixed_tiles(pipeline, tensor, fixed,
                                                   _tile_margins(fixed, halo))
            else:
                sample = predict(model=pipeline, inputs={descr.id: tensor},
                                 blocksize_parameter=_blocksize(descr, min(padded.shape[1:]),
                                                                halo))
                result = sample.members[self.description.outputs[0].id]
        dims = [str(d) for d in result.dims]
        order = [d for d in ("batch", "channel") if d in dims] + [
            d for d in dims if d not in ("batch", "channel")]
        output = np.transpose(np.asarray(result.data.to_numpy(), dtype=np.float32),
                              [dims.index(d) for d in order])
        output = output.reshape((-1,) + output.shape[-(padded.ndim - 1):])
        output = output[(slice(None),) + tuple(slice(0, n) for n in data.shape[1:])]
        return output if use_channels else output[0]

    def _predict_fixed_tiles(self, pipeline: Any, tensor: Any, tile: dict[str, int],
                             margins: dict[str, int]) -> Any:
        """The output tensor for ``tensor`` from a package that takes one fixed input size
        (CAREamics writes such packages): overlapping tiles of that size, each keeping its
        centre (all of it at the image border).

        bioimageio.core's own blocking would give the output the fixed size too, so the
        package's pre-processing runs here on the whole image (sample statistics stay those
        of the image), the network on each tile, the post-processing on the stitched result.
        """
        from bioimageio.core import Sample, Tensor

        input_id, output_id = self.description.inputs[0].id, self.description.outputs[0].id
        sample = Sample(members={input_id: tensor}, stat={}, id="image")
        pipeline.apply_preprocessing(sample)
        source = sample.members[input_id]
        dims = [str(d) for d in source.dims]
        array = np.asarray(source.data.to_numpy())
        stitched: np.ndarray | None = None
        out_dims: list[str] = []
        starts_per_axis = [_tile_starts(array.shape[dims.index(a)], tile[a], margins[a])
                           for a in tile]
        for starts in itertools.product(*starts_per_axis):
            origin = dict(zip(tile, starts, strict=True))
            window = tuple(slice(origin[d], origin[d] + tile[d]) if d in tile else slice(None)
                           for d in dims)
            block = Sample(members={input_id: Tensor(array[window], dims=tuple(dims))},
                           stat=sample.stat, id=sample.id)
            predicted = pipeline.predict_sample_without_blocking(
                block, skip_preprocessing=True, skip_postprocessing=True,
                skip_input_padding=True, skip_output_cropping=True).members[output_id]
            out_dims = [str(d) for d in predicted.dims]
            values = np.asarray(predicted.data.to_numpy())
            if stitched is None:
                stitched = np.empty([array.shape[dims.index(d)] if d in tile else n
                                     for d, n in zip(out_dims, values.shape, strict=True)],
                                    dtype=values.dtype)
            keep = {a: (0 if origin[a] == 0 else margins[a],
                        tile[a] if origin[a] + tile[a] == array.shape[dims.index(a)]
                        else tile[a] - margins[a]) for a in tile}
            stitched[tuple(slice(origin[d] + keep[d][0], origin[d] + keep[d][1]) if d in tile
                           else slice(None) for d in out_dims)] = values[tuple(
                slice(*keep[d]) if d in tile else slice(None) for d in out_dims)]
        assert stitched is not None  # at least one tile: the image was padded to the tile
        output = Sample(members={output_id: Tensor(stitched, dims=tuple(out_dims))},
                        stat=sample.stat, id=sample.id)
        pipeline.apply_postprocessing(output)
        return output.members[output_id]


def _fixed_tile(descr: Any) -> dict[str, int]:
    """The input's spatial axes and their sizes when all are fixed (``{}`` otherwise)."""
    spatial = [axis for axis in descr.axes if str(axis.id) not in ("batch", "channel")]
    if not spatial or not all(isinstance(getattr(axis, "size", None), int) for axis in spatial):
        return {}
    return {str(axis.id): int(axis.size) for axis in spatial}


def _tile_margins(tile: dict[str, int], halo: int) -> dict[str, int]:
    """Pixels dropped at each inner tile edge: the output halo if the package gives one.

    Packages with a fixed size rarely state their receptive field. 32 pixels covers that of
    the depth-2 U-Nets Noise2Void and CAREamics use by default (their output no longer changes
    beyond about 28); smaller tiles give up 3/8 of their size. A multiple of 8 keeps the tiles
    on the pooling grid of U-Nets up to depth 3, where tiles then match whole-image prediction.
    """
    margin = halo or min(32, 3 * min(tile.values()) // 8 // 8 * 8)
    return {axis: min(margin, (size - 1) // 2) for axis, size in tile.items()}


def _tile_starts(length: int, tile: int, margin: int) -> list[int]:
    """Tile origins along one axis such that the tiles' kept parts cover ``length``."""
    stride = tile - 2 * margin
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _smallest_tile(descr: Any, halo: int) -> int:
    """The smallest image side bioimageio.core can tile: the largest ``min`` of the input's
    parameterised spatial sizes plus the halo on both sides (0 when sizes are fixed)."""
    from bioimageio.spec.model.v0_5 import ParameterizedSize

    minimum = max([axis.size.min for axis in descr.axes
                   if isinstance(getattr(axis, "size", None), ParameterizedSize)] or [0])
    return minimum + 2 * halo if minimum else 0


def _halo(description: Any) -> int:
    """The largest output halo of the model (pixels each tile adds on either side)."""
    return max([int(getattr(axis, "halo", 0) or 0) for tensor in description.outputs
                for axis in tensor.axes] or [0])


def _blocksize(descr: Any, shortest: int, halo: int) -> int:
    """The size parameter n of ``min + n·step`` tiles: as large as fits the image's shortest
    spatial side (at least the smallest tile) with the halo, and at most about 256 pixels."""
    from bioimageio.spec.model.v0_5 import ParameterizedSize

    sizes = [axis.size for axis in descr.axes
             if isinstance(getattr(axis, "size", None), ParameterizedSize)]
    if not sizes:
        return 0
    step = max(size.step for size in sizes)
    return max(0, (min(shortest, 256 + 2 * halo) - _smallest_tile(descr, halo)) // step)


def _model_axes(description: Any) -> str:
    """The input's axes as our letters (batch dropped)."""
    letters = {"channel": "C", "c": "C", "z": "Z", "y": "Y", "x": "X", "time": "T", "t": "T"}
    found = [letters.get(str(axis.id).lower(), "") for axis in description.inputs[0].axes]
    return "".join(found)


def _channel_count(description: Any) -> int:
    for axis in description.inputs[0].axes:
        if str(axis.id).lower() in ("channel", "c"):
            return len(getattr(axis, "channel_names", [])) or 1
    return 1


def load_package(path: str | Path) -> BioimageioDenoiser:
    """Read a bioimage.io package (``.zip`` or ``rdf.yaml``) to denoise with.

    Raises
    ------
    InfocusInputError
        When the package is not valid (the validator's first error is quoted), is not a
        model, or is not a denoising model (one image in, one image of the same size and
        channels out, tagged as denoising or restoration).
    """
    _require()
    from bioimageio.spec import load_description

    path = Path(path)
    # Read from an unpacked copy: a description read from the .zip keeps the archive open
    # for as long as it lives.
    unpacked = Path(tempfile.mkdtemp(prefix="infocus-bioimageio-"))
    try:
        source = _unpack(path, unpacked)
        with _quiet():
            description = load_description(source, format_version="latest")
        _check_description(description, path)
        weights_format = _runnable_weights(description, path)
    except BaseException:
        shutil.rmtree(unpacked, ignore_errors=True)
        raise
    return BioimageioDenoiser(description=description, source=path, unpacked=unpacked,
                              weights_format=weights_format)


#: bioimageio.core's preference among weight formats, and the Python packages each one needs.
_WEIGHTS_NEED = {
    "pytorch_state_dict": ("torch",),
    "tensorflow_saved_model_bundle": ("tensorflow",),
    "torchscript": ("torch",),
    "onnx": ("onnxruntime",),
    "keras_v3": ("keras",),
    "keras_hdf5": ("keras", "tensorflow"),
}


def _runnable_weights(description: Any, path: Path) -> str:
    """The first of the package's weight formats, in bioimageio.core's order, that can run
    here without running Python code shipped in the package.

    PyTorch state-dict weights need their network's code: from an installed library (CAREamics
    packages name ``careamics.models.unet``), or from a ``.py`` file in the package, which is
    never run, like any code a model file brings.
    """
    from bioimageio.spec.model.v0_5 import ArchitectureFromFileDescr

    reasons = []
    for name, needs in _WEIGHTS_NEED.items():
        weights = getattr(description.weights, name, None)
        if weights is None:
            continue
        if not any(importlib.util.find_spec(module) for module in needs):
            reasons.append(f"its {name} weights need {' or '.join(needs)}")
            continue
        architecture = getattr(weights, "architecture", None)
        if isinstance(architecture, ArchitectureFromFileDescr):
            reasons.append(f"its {name} weights need Python code from the package, which "
                           "infocus does not run")
            continue
        library = getattr(architecture, "import_from", None)
        if library and importlib.util.find_spec(library.split(".")[0]) is None:
            reasons.append(f"its {name} weights need the network code of the Python package "
                           f"{library.split('.')[0]!r}, which is not installed")
            continue
        return name
    raise InfocusInputError(
        f"{path} has no weights infocus can run here ({'; '.join(reasons) or 'none given'}); "
        "install what they need, or use a package with TorchScript or ONNX weights.")


def _check_description(description: Any, path: Path) -> None:
    """Raise unless ``description`` is a valid spec 0.5 denoising model."""
    from bioimageio.spec import InvalidDescr
    from bioimageio.spec.model import v0_5

    if isinstance(description, InvalidDescr):
        errors = description.validation_summary.details
        first = next((str(e) for d in errors for e in getattr(d, "errors", [])), "invalid")
        raise InfocusInputError(
            f"{path} is not a valid bioimage.io package ({_one_line(first)[:200]}); check it "
            "with `bioimageio validate` or export it again.")
    if getattr(description, "type", None) != "model" or not isinstance(description,
                                                                       v0_5.ModelDescr):
        raise InfocusInputError(
            f"{path} is a bioimage.io {getattr(description, 'type', 'resource')}, not a model; "
            "give a denoising model package.")
    _check_denoising(description, path)


def _unpack(path: Path, folder: Path) -> Path:
    """The description file of the package ``path``, unpacked into ``folder`` if a .zip."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return path
    try:
        with zipfile.ZipFile(path) as archive:
            archive.extractall(folder)
    except (zipfile.BadZipFile, OSError) as error:
        raise InfocusInputError(f"{path} is a damaged .zip ({error}); download or export the "
                                "package again.") from error
    for name in ("bioimageio.yaml", "rdf.yaml"):
        found = sorted(folder.rglob(name))
        if found:
            return found[0]
    raise InfocusInputError(f"{path} holds no rdf.yaml; it is not a bioimage.io package.")


def _check_denoising(description: Any, path: Path) -> None:
    tags = {str(tag).lower() for tag in description.tags}
    inputs, outputs = description.inputs, description.outputs
    same_size = len(inputs) == 1 and len(outputs) >= 1 and _output_follows_input(
        inputs[0], outputs[0])
    if not same_size or not tags & _DENOISING_TAGS:
        raise InfocusInputError(
            f"{path} ({description.name!r}) is not a denoising model: infocus runs packages "
            "with one image in and an image of the same size and channels out, tagged "
            f"denoising or restoration (its tags: {', '.join(sorted(tags)) or 'none'}).")


def _output_follows_input(tensor_in: Any, tensor_out: Any) -> bool:
    """Every spatial output axis has the input's size; the channel counts agree."""
    from bioimageio.spec.model.v0_5 import SizeReference

    axes_in = {str(a.id): a for a in tensor_in.axes}
    for axis in tensor_out.axes:
        name = str(axis.id)
        if name in ("batch", "b"):
            continue
        if name in ("channel", "c"):
            if len(getattr(axis, "channel_names", [])) != len(
                    getattr(axes_in.get(name), "channel_names", [])):
                return False
            continue
        size = getattr(axis, "size", None)
        reference = isinstance(size, SizeReference) and str(size.axis_id) == name
        if name not in axes_in or not (reference or size == axes_in[name].size):
            return False
    return True
