"""``fastgrad download``: fetch the MNIST / Fashion-MNIST files and verify them."""

from __future__ import annotations

DATASETS = ("mnist", "fashion")  # fastgrad.data.DATASETS, without importing it at start-up


def register(subparsers):
    """Add the ``download`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "download", help="download and verify MNIST or Fashion-MNIST",
        description="Download the four IDX files (unless already present), check each "
                    "against its published SHA-256, and print where they are.")
    p.add_argument("--dataset", choices=DATASETS, default="mnist",
                   help="which data set (default: %(default)s)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder for the files (default: $FASTGRAD_DATA_DIR/<dataset>, "
                        "else the user cache directory)")
    p.add_argument("--mirror", metavar="URL", action="append", dest="mirrors",
                   help="base URL (http, https or file) to download from; repeat for "
                        "fallbacks; replaces the default mirrors and $FASTGRAD_MNIST_MIRRORS")
    p.add_argument("--no-progress", action="store_false", dest="progress",
                   help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    """Fetch and verify; print each file's path and SHA-256. Returns the exit status."""
    # imported on use, so `fastgrad --help` and the other subcommands skip requests
    from fastgrad import data

    files = data.fetch(args.dataset, data_dir=args.data_dir, mirrors=args.mirrors,
                       progress=args.progress)
    how = {"gz": "matches the published .gz digest",
           "raw": "decompressed content matches the published digest",
           "cache": "recorded as verified"}
    print(f"{args.dataset}: {len(files)} files verified")
    for f in files:
        print(f"  {f.path}\n    sha256 {f.sha256}  ({how[f.verified_by]})")
    return 0
