"""Book-compatible ``dataset`` package (``from dataset.mnist import load_mnist``).

It lives only in the checkout, for the book's scripts run beside it, and is not
installed: a top-level ``dataset`` in site-packages would clash with the PyPI
project of that name. Installed code uses ``from fastgrad.data import load_mnist``.
"""
