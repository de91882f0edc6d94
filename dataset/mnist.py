"""Drop-in for the book's ``dataset/mnist.py``, backed by :mod:`fastgrad.data`.

Notebooks keep ``sys.path.append(os.pardir)`` and
``from dataset.mnist import load_mnist``; the files are downloaded, verified
against their published SHA-256 and cached by :func:`fastgrad.data.load_mnist`
(folder: ``$FASTGRAD_DATA_DIR/mnist`` or the user cache directory).

Only in the checkout (see ``dataset/__init__.py``); outside it,
``from fastgrad.data import load_mnist`` is the same loader.
"""

from fastgrad import data as _data

# The book's module-level constants, for code that reads them.
train_num = 60000
test_num = 10000
img_dim = (1, 28, 28)
img_size = 784


def init_mnist():
    """Download and verify the four MNIST files (the book's ``init_mnist``)."""
    _data.fetch("mnist")


def load_mnist(normalize=True, flatten=True, one_hot_label=False):
    """Load MNIST as ``(x_train, t_train), (x_test, t_test)``.

    Parameters
    ----------
    normalize : bool
        float32 pixels in [0, 1] instead of uint8 0-255.
    flatten : bool
        Images as ``(N, 784)`` instead of ``(N, 1, 28, 28)``.
    one_hot_label : bool
        Labels as float32 ``(N, 10)`` one-hot instead of uint8 class numbers.
    """
    return _data.load_mnist(normalize=normalize, flatten=flatten, one_hot_label=one_hot_label)
