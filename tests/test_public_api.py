"""The flat public API is pinned: adding or removing a name is a deliberate change."""

import infocus


def test_public_names():
    assert sorted(infocus.__all__) == sorted(
        [
            "Image", "InfocusInputError", "NoiseParams", "OutputExistsError", "__version__",
            "denoise", "estimate_noise", "evaluate", "get_denoiser", "list_denoisers",
            "load_model", "mse", "psnr", "read_image", "si_psnr", "simulate_poisson_gaussian",
            "ssim", "train", "write_image",
        ]
    )
    for name in infocus.__all__:
        assert hasattr(infocus, name), name


def test_errors_are_value_errors():
    assert issubclass(infocus.InfocusInputError, ValueError)
    assert issubclass(infocus.OutputExistsError, infocus.InfocusInputError)


def test_train_and_load_model_are_the_real_functions_loaded_on_first_use():
    import inspect
    import subprocess
    import sys

    import infocus.predict.model
    import infocus.training.loop

    assert infocus.train is infocus.training.loop.train
    assert infocus.load_model is infocus.predict.model.load_model
    assert {"inputs", "method", "axes", "resume"} <= set(inspect.signature(infocus.train).parameters)
    # `import infocus` alone does not import torch (a second or two on every command).
    code = "import sys, infocus; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_denoise_refuses_unknown_options():
    import numpy as np
    import pytest

    image = np.random.default_rng(0).poisson(20.0, (128, 128)).astype(np.float32)
    assert infocus.denoise(image, "gaussian", sigma=1.0).shape == image.shape
    with pytest.raises(infocus.InfocusInputError, match="has no option 'sigmaa'"):
        infocus.denoise(image, "gaussian", sigmaa=1.0)
