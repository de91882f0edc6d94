"""``fastgrad bench``: validate every gradient method against the reference, then time it.

As :mod:`fastgrad.training` serves ``fastgrad train``, this package serves
``fastgrad bench`` and the repository's ``bench/`` suite; nothing else in
fastgrad imports it. One concern per module, in the order data flows:

- :mod:`~fastgrad.bench.machine`: what a timing depends on (CPU, BLAS, Numba) and BLAS limits;
- :mod:`~fastgrad.bench.workload`: the validated problem every method is timed on;
- :mod:`~fastgrad.bench.validation`: the reference gradient (full or sampled) and the checks;
- :mod:`~fastgrad.bench.timing`: rounds, interleaved thread counts, the ceiling, phases;
- :mod:`~fastgrad.bench.startup`: compile and load time, in fresh processes;
- :mod:`~fastgrad.bench.cluster`: ``--cluster``: the chunked methods timed over a Dask cluster;
- :mod:`~fastgrad.bench.run`: one ``fastgrad bench`` run, as a JSON-ready report;
- :mod:`~fastgrad.bench.report`: the report's schema, its text, its files;
- :mod:`~fastgrad.bench.compare`: a report against a saved baseline;
- :mod:`~fastgrad.bench.training`: the optimizer comparison's figures, by training;
- :mod:`~fastgrad.bench.targets`: targets files and judging a figure against one;
- :mod:`~fastgrad.bench.targets_run`: ``--targets``: the targets table measured and judged.

The figures are drawn by :mod:`fastgrad.plots`; nothing here imports matplotlib.
"""
