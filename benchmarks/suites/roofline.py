"""Prediction speed against the hardware limit, and what PyTorch offers on the CPU.

1. **Peak**: the machine's float32 (and bfloat16) matrix-multiply rate, measured in the same
   run with large square ``torch.matmul`` products on all threads.
2. **Work**: the network's floating-point operations per pixel, counted by
   ``torch.utils.flop_counter`` on the shipped default U-Net (multiply-adds count as 2).
3. **Achieved**: megapixels per second of ``model.denoise`` (tiled, blended, what users get)
   and of the bare network on batches of 256² tiles, for each variant: the shipped path
   (channels-last, batch norm folded), channels-first, bfloat16 autocast, ``torch.compile``,
   one thread instead of all, and ONNX Runtime. Achieved fraction of peak =
   FLOPs/pixel × pixels/s ÷ peak FLOP/s.
4. **Accuracy** of each variant: a model trained briefly on simulated data predicts a held-out
   image; the PSNR change against the shipped float32 path is recorded with the speed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.runner import Context
from benchmarks.suites import _data


def _best_rate(function: Callable[[], Any], work: float, seconds: float = 1.5,
               repeats: int = 3) -> float:
    """Highest ``work`` per second over ``repeats`` timed blocks of about ``seconds`` each."""
    function()  # warm up (allocation, kernels, lazy initialisation)
    start = time.perf_counter()
    function()
    once = max(time.perf_counter() - start, 1e-6)
    calls = max(1, int(seconds / once))
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = max(best, work * calls / (time.perf_counter() - start))
    return best


def peak_flops(size: int = 2048, **timing: Any) -> dict[str, float | None]:
    """Dense matmul rate in FLOP/s (2·n³ per product), float32 and bfloat16."""
    import torch

    out: dict[str, float | None] = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        try:
            a = torch.randn(size, size).to(dtype)
            b = torch.randn(size, size).to(dtype)
            out[name] = _best_rate(lambda a=a, b=b: torch.matmul(a, b), 2.0 * size**3, **timing)
        except RuntimeError:
            out[name] = None
    return out


def flops_per_pixel(network: Any, tile: int = 256) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, network.in_channels, tile, tile)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        network(x)
    return counter.get_total_flops() / (tile * tile)


def _trained_model(context: Context) -> tuple[Any, np.ndarray, np.ndarray]:
    """A default N2V model trained briefly on one simulated image; the other image is held out."""
    from infocus.methods.config import default_config
    from infocus.training.loop import train

    data = _data.simulated(context.profile, 20.0)
    steps = context.profile.learned_steps or 300
    model = train(data.noisy[:1], method="n2v", axes="SYX",
                  config=default_config("n2v").with_updates(steps=steps), progress=False,
                  log=lambda m: None)
    return model, data.noisy[1], data.clean[1]


def variants(network: Any, compile_: bool = True
             ) -> dict[str, Callable[[np.ndarray], np.ndarray] | str]:
    """Each way of running the (eval, folded) network on a numpy batch, or why it is missing."""
    import torch

    from infocus.nets import channels_last
    from infocus.predict.backends import make_runner

    cpu = torch.device("cpu")

    def autocast_runner(net: Any) -> Callable:
        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return net(channels_last(torch.from_numpy(batch), 2)).float().numpy()
        return run

    def first_runner(net: Any) -> Callable:
        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return net(torch.from_numpy(batch).contiguous()).numpy()
        return run

    last = channels_last(_copy(network), 2)
    out: dict[str, Any] = {
        "PyTorch float32, channels-last (before)": make_runner(last, device=cpu, ndim=2,
                                                                backend="torch")[0],
        "PyTorch channels-first": first_runner(
            _copy(network).to(memory_format=torch.contiguous_format)),
        "PyTorch bfloat16 autocast": autocast_runner(last),
    }
    try:
        if not compile_:
            raise RuntimeError("not tried in this profile")
        compiled = torch.compile(channels_last(_copy(network), 2), dynamic=False)
        out["PyTorch torch.compile"] = make_runner(compiled, device=cpu, ndim=2,
                                                   backend="torch")[0]
    except Exception as error:  # noqa: BLE001 - any failure is the finding
        out["PyTorch torch.compile"] = f"unavailable: {type(error).__name__}: {error}"[:200]
    onnx = "ONNX Runtime (shipped for 2 MP and more)"
    try:
        out[onnx] = make_runner(_copy(network), device=cpu, ndim=2, backend="onnxruntime")[0]
    except Exception as error:  # noqa: BLE001
        out[onnx] = f"unavailable: {type(error).__name__}: {error}"[:200]
    return out


def _copy(network: Any) -> Any:
    import copy

    return copy.deepcopy(network)


def _whole_image(model: Any, image: np.ndarray, runner: Callable) -> np.ndarray:
    """The model's prediction of a 2-D image in one network call (no tiling), with ``runner``."""
    normed = model.input_norm.normalize(image[None], channel_axis=0)
    out = runner(np.ascontiguousarray(normed[None], dtype=np.float32))[0]
    return model.target_norm.denormalize(out, channel_axis=0)[0]


def run(context: Context) -> dict[str, Any]:
    import torch

    from infocus.metrics import psnr
    from infocus.nets import fused_for_inference

    threads = torch.get_num_threads()
    timing = {"seconds": context.profile.timing_seconds, "repeats": context.profile.timing_repeats}
    matmul = 1024 if context.profile.crop else 2048
    peak = peak_flops(matmul, **timing)
    context.log("peak " + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peak.items() if v))
    model, held_out, clean = _trained_model(context)
    network = fused_for_inference(model.network)
    work = flops_per_pixel(network)
    context.log(f"{work / 1e3:.1f} kFLOP per pixel")
    side = max(64, int(math.sqrt(context.profile.roofline_megapixels * 1e6 / 4)) // 16 * 16)
    batch = np.random.default_rng(0).normal(0, 1, (4, 1, side, side)).astype(np.float32)
    # Accuracy on a whole image in one call (sizes a multiple of the pooling grid).
    h, w = (n // 4 * 4 for n in held_out.shape)
    held_out, clean = held_out[:h, :w], clean[:h, :w]
    found = variants(network, context.profile.roofline_compile)
    reference_runner = found["PyTorch float32, channels-last (before)"]
    assert callable(reference_runner)
    reference = _whole_image(model, held_out, reference_runner)
    base_psnr = psnr(reference, clean)
    rows: dict[str, Any] = {}
    for name, runner in found.items():
        if isinstance(runner, str):
            rows[name] = {"skipped": runner}
            context.log(f"{name}: {runner}")
            continue
        rate = _best_rate(lambda runner=runner: runner(batch), batch.size / 1e6, **timing)
        prediction = _whole_image(model, held_out, runner)
        rows[name] = {
            "megapixels_per_second": rate,
            "fraction_of_float32_peak": rate * 1e6 * work / peak["float32"],
            "psnr_change_db": psnr(prediction, clean) - base_psnr,
            "max_abs_difference": float(np.abs(prediction - reference).max()),
        }
        context.log(f"{name}: {rate:.2f} MP/s, {rows[name]['fraction_of_float32_peak']:.1%} of "
                    f"peak, ΔPSNR {rows[name]['psnr_change_db']:+.4f} dB")
    torch.set_num_threads(1)
    try:
        one = _best_rate(lambda: reference_runner(batch), batch.size / 1e6, **timing)
    finally:
        torch.set_num_threads(threads)
    rows["PyTorch, one thread"] = {
        "megapixels_per_second": one,
        "fraction_of_float32_peak": one * 1e6 * work / peak["float32"],
        "psnr_change_db": 0.0,
    }
    big = np.tile(held_out, (2, 2))
    end_to_end = {}
    for backend in ("torch", "auto"):
        model.denoise(big[:256, :256], backend=backend)  # export / warm up outside the timing
        start = time.perf_counter()
        model.denoise(big, backend=backend)
        end_to_end[model.last_backend] = big.size / 1e6 / (time.perf_counter() - start)
    context.log("denoise end to end: " + ", ".join(f"{k} {v:.2f} MP/s"
                                                   for k, v in end_to_end.items()))
    return {
        "threads": threads,
        "peak_flops": peak,
        "matmul_size": matmul,
        "network": {"name": model.config.network, **model.config.network_options,
                    "parameters": sum(p.numel() for p in network.parameters())},
        "flops_per_pixel": work,
        "batch": list(batch.shape),
        "variants": rows,
        "denoise_megapixels_per_second": end_to_end,
        "denoise_image": list(big.shape),
        "reference_psnr": base_psnr,
    }
