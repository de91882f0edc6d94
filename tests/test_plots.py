"""fastgrad.plots: the benchmark's figures (the training curves are tested with training)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fastgrad import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _report():
    """A saved ``fastgrad bench`` report, as much of it as the figure reads."""
    rows = [{"method": "reference", "threads": None, "median_s": 12.0, "main": True,
             "speedup_vs_reference": 1.0, "speedup_vs_1_thread": None},
            {"method": "backprop", "threads": None, "median_s": 3e-4, "main": True,
             "speedup_vs_reference": 4e4, "speedup_vs_1_thread": None}]
    for t, s in ((1, 4.6e-3), (2, 2.5e-3)):
        rows.append({"method": "incremental", "threads": t, "median_s": s, "main": t == 2,
                     "speedup_vs_reference": 12.0 / s, "speedup_vs_1_thread": 4.6e-3 / s})
    return {"timings": rows,
            "ceiling": {"rows": [{"threads": 1, "speedup_vs_1_thread": 1.0},
                                 {"threads": 2, "speedup_vs_1_thread": 1.9}]},
            "workload": {"layers": [784, 50, 10], "batch": 100, "data": "mnist"},
            "environment": {"cpu": "a CPU"}}


def test_benchmark_figure(tmp_path):
    pytest.importorskip("matplotlib")
    path = plots.plot_benchmark(_report(), tmp_path / "b.png")
    assert path == tmp_path / "b.png" and path.read_bytes()[:8] == PNG


def test_no_matplotlib_no_file(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    for draw in (plots.plot_benchmark, plots.plot_method_comparison):
        with pytest.raises(ImportError):
            draw(_report(), tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


def test_method_comparison_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from fastgrad.bench import training

    rng = np.random.default_rng(1)
    x = (rng.random((30, 784)) * (rng.random((30, 784)) < 0.2)).astype(np.float32)
    t = rng.integers(0, 10, 30)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "NET", {**training.NET, "hidden_size_list": [3]})
        _, histories, _ = training.run_comparison(
            ((x[:20], t[:20]), (x[20:], t[20:])), described="synthetic", iters=4, batch=5,
            threads=1, say=lambda _: None)
    png = plots.plot_method_comparison(histories, tmp_path / "cmp.png")
    assert png.read_bytes()[:8] == PNG


def test_training_figures_name_the_convnet_as_such():
    config = {"net": "convnet", "input_dim": [1, 28, 28], "hidden_size_list": [100],
              "output_size": 10, "input_size": 784, "activation": "relu",
              "weight_init_std": 0.01, "weight_decay_lambda": 0.0, "dataset": "fashion",
              "conv_param": {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}}
    assert plots.describe(config) == ("convnet 1x28x28 -> 30 filters 5x5 (pad 0, stride 1) -> "
                                      "relu -> pool -> 100 relu -> 10 (init 0.01) on fashion")
    mlp = {**config, "net": "mlp", "hidden_size_list": [50], "weight_decay_lambda": 0.1}
    assert plots.describe(mlp) == "784-50-10 relu net (init 0.01, decay 0.1) on fashion"
