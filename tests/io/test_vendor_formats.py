"""Vendor formats through bioio: CZI, LIF and ND2 axes, pixel sizes, scenes and errors.

CZI files are written here by pylibCZIrw (Zeiss's own library). No Python library writes
LIF or ND2, so the LIF files are written by :func:`write_lif` below to Leica's published
layout (a header, the XML description in UTF-16 and one memory block per image), and read
by the real liffile/bioio-lif stack. ND2 files cannot be made here: the ND2 path is tested
with a stand-in reader that serves arrays through bioio's own array reader.
"""

from __future__ import annotations

import logging
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from infocus._errors import InfocusInputError
from infocus.io import open_image_lazy, read_image, write_image
from infocus.io._bioio import image_from_bioimage

pytest.importorskip("bioio", reason="the formats extra (bioio) is not installed")


# --- writers for the test files ---------------------------------------------------------


def write_czi(path: Path, planes: dict[tuple[int, int, int], np.ndarray], *,
              scale_um: dict[str, float], channel_names: list[str] | None = None) -> Path:
    """A CZI of ``planes[(t, c, z)]`` (2-D, or YX3 uint8 for RGB) with pixel sizes in µm."""
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for (t, c, z), plane in planes.items():
            czi.write(plane, plane={"T": t, "C": c, "Z": z}, scene=0)
        czi.write_metadata(
            channel_names=dict(enumerate(channel_names)) if channel_names else None,
            **{f"scale_{a.lower()}": v * 1e-6 for a, v in scale_um.items()},
        )
    return path


def write_lif(path: Path, images: list[tuple[str, np.ndarray, dict[str, float]]]) -> Path:
    """A LIF (version 2) holding ``(name, data with axes CZYX, pixel sizes in µm)`` images.

    The layout follows "Leica Image File Formats - LIF, XLEF, XLLF, LOF", version 3.2: a
    header block (0x70, size, 0x2A, length, UTF-16 XML), then per memory block 0x70, 0,
    0x2A, the uint64 size, 0x2A, the UTF-16 block id and the raw pixels (X fastest).
    """
    elements, blocks = [], []
    for index, (name, data, sizes_um) in enumerate(images):
        n_c, n_z, n_y, n_x = data.shape
        itemsize = data.dtype.itemsize
        dims_xml, stride = "", itemsize
        for dim_id, axis, n in ((1, "X", n_x), (2, "Y", n_y), (3, "Z", n_z)):
            # Length is the extent from the first to the last pixel centre, in metres.
            length = sizes_um[axis] * 1e-6 * (n - 1)
            dims_xml += (f'<DimensionDescription DimID="{dim_id}" NumberOfElements="{n}" '
                         f'Origin="0" Length="{length!r}" Unit="m" BitInc="0" '
                         f'BytesInc="{stride}"/>')
            stride *= n
        channels_xml = "".join(
            f'<ChannelDescription DataType="0" ChannelTag="0" Resolution="{8 * itemsize}" '
            f'NameOfMeasuredQuantity="" Min="0" Max="255" Unit="" LUTName="{lut}" '
            f'IsLUTInverted="0" BytesInc="{c * stride}" BitInc="0"/>'
            for c, lut in zip(range(n_c), ("Green", "Red", "Blue"), strict=False)
        )
        block_id = f"MemBlock_{index}"
        payload = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<")).tobytes()
        elements.append(
            f'<Element Name="{name}" UniqueID="{index}"><Data><Image><ImageDescription>'
            f"<Channels>{channels_xml}</Channels><Dimensions>{dims_xml}</Dimensions>"
            f'</ImageDescription></Image></Data><Memory Size="{len(payload)}" '
            f'MemoryBlockID="{block_id}"/><Children/></Element>'
        )
        blocks.append((block_id, payload))
    xml = ('<LMSDataContainerHeader Version="2"><Element Name="project" UniqueID="root">'
           '<Data><Experiment/></Data><Memory Size="0" MemoryBlockID="MemBlock_root"/>'
           f'<Children>{"".join(elements)}</Children></Element></LMSDataContainerHeader>')
    text = xml.encode("utf-16-le")
    with open(path, "wb") as handle:
        handle.write(struct.pack("<IIBI", 0x70, len(text) + 5, 0x2A, len(xml)))
        handle.write(text)
        for block_id, payload in [("MemBlock_root", b""), *blocks]:
            handle.write(struct.pack("<IIBQBI", 0x70, 0, 0x2A, len(payload), 0x2A, len(block_id)))
            handle.write(block_id.encode("utf-16-le"))
            handle.write(payload)
    return path


@pytest.fixture
def czyx_czi(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Two named channels, three planes; every plane holds a distinct constant plus a ramp."""
    data = np.empty((2, 3, 20, 30), np.uint16)
    for c in range(2):
        for z in range(3):
            data[c, z] = 100 * z + 10 * c + np.arange(30, dtype=np.uint16)
    planes = {(0, c, z): data[c, z] for c in range(2) for z in range(3)}
    path = write_czi(tmp_path / "stack.czi", planes, scale_um={"X": 0.1, "Y": 0.2, "Z": 0.5},
                     channel_names=["DAPI", "GFP"])
    return path, data


# --- CZI (real files) --------------------------------------------------------------------


def test_czi_axes_pixel_sizes_and_channel_names(czyx_czi) -> None:
    path, data = czyx_czi
    image = read_image(path)
    assert image.axes == "CZYX"  # T of length 1 dropped, as for TIFF
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image.data, data)
    assert image.pixel_sizes == pytest.approx({"Z": 0.5, "Y": 0.2, "X": 0.1})
    assert image.unit == "µm"
    assert image.channel_names == ["DAPI", "GFP"]
    assert image.source == str(path)


def test_czi_lazy_reads_numpy_blocks(czyx_czi) -> None:
    path, data = czyx_czi
    image = open_image_lazy(path)
    assert image.axes == "CZYX" and image.shape == data.shape
    assert not isinstance(image.data, np.ndarray)  # nothing read yet
    assert image.data.chunks == (1, 1, 20, 30)  # one plane per read; prediction streams it
    block = image.data[1, 2]
    assert isinstance(block, np.ndarray)
    np.testing.assert_array_equal(block, data[1, 2])
    np.testing.assert_array_equal(image.load().data, data)
    assert image.pixel_sizes == pytest.approx({"Z": 0.5, "Y": 0.2, "X": 0.1})


def test_czi_time_series_without_z_size(tmp_path: Path) -> None:
    planes = {(t, 0, 0): np.full((8, 12), t, np.uint16) for t in range(4)}
    path = write_czi(tmp_path / "movie.czi", planes, scale_um={"X": 0.3, "Y": 0.3})
    image = read_image(path)
    assert image.axes == "TYX"
    np.testing.assert_array_equal(image.data[:, 0, 0], [0, 1, 2, 3])
    assert image.pixel_sizes == pytest.approx({"Y": 0.3, "X": 0.3})  # Z 0 = unknown, left out
    assert image.channel_names is None  # bioio's made-up "Channel:0" is not a name


@pytest.mark.parametrize("lazy", [False, True])
def test_czi_rgb_samples_become_channels(tmp_path: Path, lazy: bool) -> None:
    rgb = np.zeros((8, 12, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 1, 2, 3
    path = write_czi(tmp_path / "slide.czi", {(0, 0, 0): rgb}, scale_um={"X": 0.5, "Y": 0.5})
    image = (open_image_lazy if lazy else read_image)(path).load()
    assert image.axes == "YXC"
    assert image.data[0, 0].tolist() == [1, 2, 3]  # each sample its own value
    assert image.pixel_sizes == pytest.approx({"Y": 0.5, "X": 0.5})


def test_given_axes_win_over_the_file(czyx_czi) -> None:
    path, _ = czyx_czi
    image = read_image(path, axes="TZYX")  # e.g. channels that are really time points
    assert image.axes == "TZYX"
    assert image.pixel_sizes == pytest.approx({"Z": 0.5, "Y": 0.2, "X": 0.1})
    assert image.channel_names is None
    with pytest.raises(InfocusInputError, match="pass 4 letters"):
        read_image(path, axes="ZYX")


def test_vendor_files_are_read_only(tmp_path: Path) -> None:
    with pytest.raises(InfocusInputError, match=r"reads \.czi files but does not write them"):
        write_image(tmp_path / "out.czi", np.zeros((4, 4), np.float32))
    assert not (tmp_path / "out.czi").exists()


# --- LIF (files in Leica's layout, read by liffile) ---------------------------------------


@pytest.fixture
def two_image_lif(tmp_path: Path) -> tuple[Path, np.ndarray]:
    volume = np.arange(2 * 3 * 6 * 7, dtype=np.uint16).reshape(2, 3, 6, 7)
    plane = np.full((1, 1, 6, 7), 9, np.uint8)
    path = write_lif(tmp_path / "project.lif", [
        ("cells", volume, {"X": 0.1, "Y": 0.2, "Z": 0.5}),
        ("overview", plane, {"X": 0.3, "Y": 0.3, "Z": 1.0}),
    ])
    return path, volume


def test_lif_first_scene_axes_and_pixel_sizes(two_image_lif, caplog) -> None:
    path, volume = two_image_lif
    with caplog.at_level(logging.WARNING, logger="infocus.io._bioio"):
        image = read_image(path)
    assert "holds 2 scenes" in caplog.text and "scene=" in caplog.text
    assert image.axes == "CZYX"
    np.testing.assert_array_equal(image.data, volume)
    assert image.pixel_sizes == pytest.approx({"Z": 0.5, "Y": 0.2, "X": 0.1})


@pytest.mark.parametrize("scene", [1, "overview"])
def test_lif_scene_by_index_or_name(two_image_lif, scene) -> None:
    path, _ = two_image_lif
    image = read_image(path, scene=scene)
    assert image.axes == "YX" and image.dtype == np.uint8
    assert int(image.data[0, 0]) == 9
    assert image.pixel_sizes == pytest.approx({"Y": 0.3, "X": 0.3})
    assert open_image_lazy(path, scene=scene).shape == (6, 7)


@pytest.mark.parametrize(("scene", "message"), [
    (2, r"has 2 scene\(s\), so scene 2 does not exist; choose an index from 0 to 1"),
    ("nuclei", r"has no scene named 'nuclei'; choose one of 'cells', 'overview'"),
])
def test_missing_scene_is_named(two_image_lif, scene, message) -> None:
    path, _ = two_image_lif
    with pytest.raises(InfocusInputError, match=message):
        read_image(path, scene=scene)


def test_scene_is_refused_for_single_image_formats(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.tif", np.zeros((4, 4), np.float32))
    with pytest.raises(InfocusInputError, match="applies to CZI, ND2 and LIF files"):
        read_image(path, scene=1)


# --- ND2 (no writer exists: a stand-in reader behind the real dispatch) ----------------------


def test_nd2_goes_through_the_nd2_plugin(tmp_path: Path, monkeypatch) -> None:
    import bioio_nd2
    from bioio.array_like_reader import ArrayLikeReader
    from bioio_base.types import PhysicalPixelSizes

    data = np.arange(3 * 2 * 5 * 6, dtype=np.uint16).reshape(3, 1, 2, 5, 6)
    opened: list[str] = []

    class StandIn(ArrayLikeReader):
        def __init__(self, image, **_options) -> None:
            opened.append(str(image))
            super().__init__(data, dim_order="TCZYX", channel_names=["mCherry"],
                             physical_pixel_sizes=PhysicalPixelSizes(2.0, 0.65, 0.65))

    monkeypatch.setattr(bioio_nd2, "Reader", StandIn)
    path = tmp_path / "timelapse.nd2"
    path.write_bytes(b"stand-in")
    image = read_image(path)
    assert opened == [str(path)]
    assert image.axes == "TZYX"
    np.testing.assert_array_equal(image.data, data[:, 0])
    assert image.pixel_sizes == {"Z": 2.0, "Y": 0.65, "X": 0.65}
    assert image.channel_names == ["mCherry"]  # one channel: kept, like TIFF


# --- dims mapping on bioio's own array reader -------------------------------------------


@pytest.mark.parametrize(("shape", "dims", "axes"), [
    ((1, 1, 1, 5, 6), "TCZYX", "YX"),
    ((4, 2, 3, 5, 6), "TCZYX", "TCZYX"),
    ((1, 1, 1, 1, 6), "TCZYX", "YX"),  # a line scan keeps Y
    ((1, 1, 1, 5, 6, 3), "TCZYXS", "YXC"),
    ((7, 1, 1, 1, 5, 6), "MTCZYX", "SYX"),  # unstitched mosaic tiles
])
def test_dims_map_to_axes(shape, dims, axes) -> None:
    from bioio import BioImage

    data = np.random.default_rng(0).integers(0, 100, shape, dtype=np.uint16)
    image = image_from_bioimage(BioImage(data, dim_order=dims), "array")
    assert image.axes == axes
    np.testing.assert_array_equal(image.data.ravel(), data.ravel())


def test_rgb_with_several_channels_needs_axes() -> None:
    from bioio import BioImage

    data = np.zeros((1, 2, 1, 5, 6, 3), np.uint8)
    with pytest.raises(InfocusInputError, match="cannot map to its axes"):
        image_from_bioimage(BioImage(data, dim_order="TCZYXS"), "two_rgb.czi")


def test_scenes_of_an_array_list() -> None:
    from bioio import BioImage

    first, second = np.zeros((5, 6), np.uint8), np.ones((2, 5, 6), np.uint8)
    bio = BioImage([first, second], dim_order=["YX", "ZYX"])
    assert image_from_bioimage(bio, "two", scene=1).axes == "ZYX"
    with pytest.raises(InfocusInputError, match="A scene is an index or a name"):
        image_from_bioimage(bio, "two", scene=1.0)


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "name"), [
    (".czi", "Zeiss CZI"), (".nd2", "Nikon ND2"), (".lif", "Leica LIF"),
])
def test_garbage_file_is_one_sentence(tmp_path: Path, suffix: str, name: str) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"this is not an image " * 40)
    with pytest.raises(InfocusInputError, match=f"is damaged or not a valid {name} file") as info:
        read_image(path)
    assert "\n" not in str(info.value)
    assert str(info.value).endswith("check the file or export it again.")


def test_truncated_czi_is_one_sentence(czyx_czi, tmp_path: Path) -> None:
    path, _ = czyx_czi
    cut = tmp_path / "cut.czi"
    cut.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InfocusInputError, match="cut.czi") as info:
        read_image(cut)
    assert "\n" not in str(info.value)


def test_without_the_extra_the_error_says_what_to_install(czyx_czi, monkeypatch) -> None:
    path, _ = czyx_czi
    monkeypatch.setitem(sys.modules, "bioio", None)  # import bioio now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'infocus\[formats\]'"):
        read_image(path)


def test_file_larger_than_memory_is_refused(czyx_czi, monkeypatch) -> None:
    import psutil

    path, _ = czyx_czi

    class Tiny:
        available = 1000

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny())
    with pytest.raises(InfocusInputError, match="open it with open_image_lazy"):
        read_image(path)
    assert open_image_lazy(path).shape == (2, 3, 20, 30)  # lazy opening still works
