"""``fastgrad check --net convnet`` and :mod:`fastgrad.validate_conv`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fastgrad import cli, methods, validate_conv
from fastgrad.convnet import SimpleConvNet

TINY = ["check", "--net", "convnet", "--filters", "3", "--filter-size", "3", "--hidden", "5",
        "--batch", "3", "--synthetic"]


def test_check_convnet_compares_every_conv_entry(capsys):
    assert cli.main(TINY) == 0
    out = capsys.readouterr().out
    assert "2,630 parameters" in out and "all methods within tolerance" in out
    # 27 + 3 conv entries, and 32 of each other tensor (b2: all 5, b3: all 10)
    assert "on 109 of 2,630 parameters: every conv parameter and 32 per other tensor" in out
    for method in ("jit", "incremental"):
        assert f"{method:<12} reference  W1" in out


def test_validate_conv_samples_every_conv_entry():
    net = SimpleConvNet(conv_param={"filter_num": 2, "filter_size": 5, "pad": 0, "stride": 1},
                        hidden_size=4, seed=1)
    x = np.random.default_rng(0).random((2, 1, 28, 28))
    reports, skipped = validate_conv.validate_conv(net.params, x, [1, 7], methods=["incremental"],
                                                   sample=3)
    assert not skipped and [r.method for r in reports] == ["incremental", "reference",
                                                           "reference"]
    counts = {t.name: t.compared for t in reports[0].tensors}
    assert counts == {"W1": 50, "b1": 2, "W2": 3, "b2": 3, "W3": 3, "b3": 3}
    assert all(r.ok for r in reports)


def test_check_convnet_detects_a_broken_method(monkeypatch, capsys):
    entry = methods.METHODS["incremental"]
    good = entry.conv_func

    def broken(*args, **kwargs):
        grads = good(*args, **kwargs)
        grads["W1"] = grads["W1"] + 1e-6
        return grads

    monkeypatch.setitem(methods.METHODS, "incremental",
                        dataclasses.replace(entry, conv_func=broken))
    assert cli.main([*TINY, "--methods", "incremental"]) == 1
    assert "FAILED: incremental vs reference" in capsys.readouterr().out


def test_check_convnet_skips_jit_on_a_big_net_and_refuses_it_when_named(capsys):
    args = ["check", "--net", "convnet", "--filters", "16", "--filter-size", "3", "--hidden",
            "16", "--batch", "1", "--synthetic", "--sample", "1"]
    assert cli.main([*args, "--methods", "jit"]) == 2
    assert "jit runs a full forward pass" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at most 20,000"):
        validate_conv.validate_conv(SimpleConvNet(seed=0).params, np.zeros((1, 1, 28, 28)),
                                    [0], methods=["jit"])


@pytest.mark.parametrize("extra, message", [
    (["--hidden", "10", "10"], "one --hidden width"),
    (["--filter-size", "40"], "larger than"),
    (["--filter-size", "4"], "even"),
    (["--activation", "relu"], "--activation is for --net mlp"),
])
def test_check_convnet_bad_flags_exit_2(extra, message, capsys):
    assert cli.main(["check", "--net", "convnet", "--batch", "1", "--synthetic", *extra]) == 2
    assert message in capsys.readouterr().err
