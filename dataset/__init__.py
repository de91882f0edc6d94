"""Book-compatible ``dataset`` package (``from dataset.mnist import load_mnist``)."""
