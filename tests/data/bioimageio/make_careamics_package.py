"""Make the CAREamics test package and CAREamics' own prediction of a small test image.

Not run by the test suite. Run it with careamics 0.3.5 installed (its bioimageio.core 0.11 and
torch), from this folder:

    python make_careamics_package.py .

It trains a CAREamics Noise2Void model (the smallest UNet CAREamics allows at depth 2: 8 initial
filters) on one synthetic 256x256 image, exports it with CAREamics' own bioimage.io export
(``CAREamist.export_to_bmz``), and adds TorchScript weights traced from CAREamics' network, so
the package runs where careamics is not installed. It writes

- ``careamics-n2v-tiny.zip``: the package;
- ``input.npy``: a 96x100 noisy test image (float32, photon counts);
- ``careamics_prediction.npy``: ``CAREamist.predict`` of it (the whole image at once).
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from bioimageio.core import load_model_description, test_model
from bioimageio.spec import save_bioimageio_package
from bioimageio.spec.model.v0_5 import TorchscriptWeightsDescr, Version
from careamics import CAREamist
from careamics.config import create_advanced_n2v_config


def blobs(shape, count, rng):
    """Smooth Gaussian blobs on a dim background, up to about 60 photons."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    image = np.full(shape, 5.0, np.float32)
    for _ in range(count):
        y, x = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        sigma, peak = rng.uniform(3, 10), rng.uniform(20, 60)
        image += peak * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
    return image


def add_torchscript(careamist, package: Path) -> None:
    """Add TorchScript weights traced from CAREamics' network in eval mode.

    CAREamics' UNet cannot be scripted, and bioimageio.core 0.11's ``add_weights`` traces the
    network in training mode (batch-norm then uses each batch's statistics), so it is traced
    here, on the package's test input after its normalisation.
    """
    description = load_model_description(package)
    network = careamist.model.model.eval()
    step = description.inputs[0].preprocessing[-2].kwargs  # fixed_zero_mean_unit_variance
    example = description.get_input_test_arrays()[0]
    example = (example - np.float32(step.mean[0])) / np.float32(step.std[0])
    with tempfile.TemporaryDirectory() as folder:
        traced = Path(folder) / "weights_torchscript.pt"
        with torch.no_grad():
            torch.jit.trace(network, torch.from_numpy(example.astype(np.float32))).save(traced)
        description.weights.torchscript = TorchscriptWeightsDescr(
            source=traced, pytorch_version=Version(torch.__version__.split("+")[0]),
            parent="pytorch_state_dict",
            comment="Traced with torch.jit.trace from CAREamics' UNet in eval mode.")
        summary = test_model(description, weight_format="torchscript")
        assert summary.status == "passed", summary.display()
        complete = Path(folder) / package.name  # the description still reads ``package``
        save_bioimageio_package(description, output_path=complete)
        complete.replace(package)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(13)
    torch.manual_seed(13)
    train = rng.poisson(blobs((256, 256), 60, rng)).astype(np.float32)
    test = rng.poisson(blobs((96, 100), 8, rng)).astype(np.float32)  # CAREamics: multiples of 4

    config = create_advanced_n2v_config(
        experiment_name="n2v_tiny", data_type="array", axes="YX", patch_size=[32, 32],
        batch_size=8, num_epochs=10, num_steps=30, n_val_patches=4, num_workers=0,
        model_params={"depth": 2, "num_channels_init": 8},
        trainer_params={"enable_progress_bar": False, "accelerator": "cpu"},
    )
    with tempfile.TemporaryDirectory() as work:
        careamist = CAREamist(config, work_dir=work)
        careamist.train(train_data=train)
        prediction = careamist.predict(test, data_type="array", axes="YX")
        np.save(out / "input.npy", test)
        np.save(out / "careamics_prediction.npy",
                np.squeeze(np.asarray(prediction[0])).astype(np.float32))
        package = out / "careamics-n2v-tiny.zip"
        careamist.export_to_bmz(
            path_to_archive=package, friendly_model_name="careamics-n2v-tiny",
            input_array=test[:64, :64], authors=[{"name": "infocus developers"}],
            general_description="A tiny CAREamics Noise2Void model (UNet depth 2, 8 initial "
            "filters) trained for 300 steps on synthetic Poisson-noisy blobs; a test fixture.",
            data_description="One synthetic 256x256 image: Gaussian blobs, Poisson noise.",
        )
        add_torchscript(careamist, package)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
