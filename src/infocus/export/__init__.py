"""Trained models in the formats other tools run: ONNX, TorchScript, BioImage Model Zoo.

::

    from infocus.export import export_model
    export_model("n2v-model", "n2v.onnx", format="onnx")
    export_model("n2v-model", "n2v-bioimageio.zip", format="bioimageio")

An exported model is the network with its normalisation (:mod:`infocus.export._graph`);
each method says what of its prediction the graph cannot carry, and :func:`export_model`
returns those sentences. Packages made elsewhere (CAREamics, n2v) are read back with
:func:`infocus.export.bioimageio.load_package`.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal

from infocus._errors import InfocusInputError
from infocus.export._graph import (
    EXPORT_TOLERANCE,
    ExportedGraph,
    exported_graph,
    onnx_bytes,
    torchscript_bytes,
)

__all__ = ["EXPORT_TOLERANCE", "FORMATS", "ExportFormat", "ExportedGraph", "export_model",
           "exported_graph", "format_for"]

ExportFormat = Literal["onnx", "torchscript", "bioimageio"]
#: Each format and the file suffix it is written with.
FORMATS: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt", "bioimageio": ".zip"}


def export_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    format: ExportFormat | None = None,
    overwrite: bool = False,
    sample: Any = None,
    sample_axes: str | None = None,
    authors: tuple[str, ...] = (),
    license: str = "CC-BY-4.0",
    check: bool = True,
) -> list[str]:
    """Write ``model`` (a :class:`~infocus.predict.TrainedModel` or its path) as ``format``.

    Parameters
    ----------
    model : TrainedModel or path
        A model from ``infocus train``.
    path : path
        The file to write (``.onnx``, ``.pt`` for TorchScript, ``.zip`` for bioimage.io);
        written to a temporary name first and renamed once complete.
    format : {"onnx", "torchscript", "bioimageio"}, optional
        Default: from the ending of ``path`` (:data:`FORMATS`). ONNX (opset of the installed
        exporter) and TorchScript take ``(B, C, [Z,] Y, X)`` float32 in camera units. A bioimage.io package (spec 0.5) holds both, with the
        normalisation written as the spec's pre- and post-processing, a test image and its
        expected output, a cover, the method's citation and the training provenance.
    overwrite : bool
        Replace an existing ``path``.
    sample, sample_axes : array and str, optional
        bioimage.io only: the image its test input and cover are cut from (default: the
        embedded sample rescaled to the model's training intensities).
    authors, license : optional
        bioimage.io only: the package's authors and the weights' SPDX licence.
    check : bool
        bioimage.io only: run ``bioimageio.core``'s model test on the package before it is
        put in place; a failure raises and leaves nothing behind.

    Returns
    -------
    list of str
        What the exported model leaves out of infocus's prediction (empty when nothing).

    Raises
    ------
    InfocusInputError
        Unknown format, a method that cannot be exported, an existing output without
        ``overwrite``, or a missing optional package (with the install command).
    """
    from infocus.predict.model import TrainedModel, load_model

    path = Path(path).expanduser()
    format = format or format_for(path)
    if format not in FORMATS:
        raise InfocusInputError(
            f"Unknown export format {format!r}; choose one of {', '.join(FORMATS)}."
        )
    loaded = model if isinstance(model, TrainedModel) else load_model(model)
    _check_destination(path, overwrite)
    graph = exported_graph(loaded)
    if format == "bioimageio":
        from infocus.export.bioimageio import write_package

        write_package(loaded, graph, path, overwrite=overwrite, sample=sample,
                      sample_axes=sample_axes, authors=authors, license=license, check=check)
    else:
        if format == "onnx" and importlib.util.find_spec("onnx") is None:
            raise InfocusInputError(
                "ONNX export needs the onnx package; install it with pip install 'infocus[onnx]'."
            )
        example = graph.example()
        data = (onnx_bytes(graph.module, example, graph.spatial) if format == "onnx"
                else torchscript_bytes(graph.module, example))
        _write_bytes_atomically(data, path, overwrite)
    return graph.limits


def format_for(path: str | os.PathLike[str]) -> ExportFormat:
    """The export format that the file name ``path`` ends in (:data:`FORMATS`).

    Raises
    ------
    InfocusInputError
        When the ending names none.
    """
    name = Path(path).name.lower()
    for format, suffix in FORMATS.items():
        if name.endswith(suffix):
            return format  # type: ignore[return-value]
    raise InfocusInputError(
        f"Cannot tell the export format from {Path(path).name!r}; end it in .onnx, .pt or "
        ".zip, or give the format."
    )


def _check_destination(path: Path, overwrite: bool) -> None:
    from infocus.io._atomic import check_output_path

    if path.is_dir():
        raise InfocusInputError(f"{path} is a folder; give a file name for the exported model.")
    check_output_path(path, overwrite=overwrite)


def _write_bytes_atomically(data: bytes, path: Path, overwrite: bool) -> None:
    from infocus.io._atomic import atomic_output

    with atomic_output(path, overwrite=overwrite, suffix=path.suffix) as temporary:
        temporary.write_bytes(data)
