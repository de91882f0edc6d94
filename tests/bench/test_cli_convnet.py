"""``fastgrad bench --net convnet --quick``: validates, times and writes the one report schema."""

from __future__ import annotations

import json

from fastgrad import cli


def test_bench_convnet_quick_writes_the_report(tmp_path, capsys):
    path = tmp_path / "conv.json"
    code = cli.main(["bench", "--net", "convnet", "--filters", "3", "--filter-size", "3",
                     "--hidden", "5", "--batch", "3", "--synthetic", "--quick", "--threads", "1",
                     "--no-phases", "--json", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "speed-up vs reference" in out and "every conv parameter" in out
    report = json.loads(path.read_text())
    assert report["workload"]["net"] == "convnet" and report["ok"]
    assert {r["method"] for r in report["timings"]} == {"reference", "jit", "incremental",
                                                        "backprop"}
    assert all(r["speedup_vs_reference"] > 0 for r in report["timings"])


def test_bench_convnet_refuses_mlp_flags(capsys):
    assert cli.main(["bench", "--net", "convnet", "--activation", "relu", "--quick"]) == 2
    assert "--activation is not available with --net convnet" in capsys.readouterr().err
