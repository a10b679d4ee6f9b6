"""Bundled demo data: pseudonymised customer-care mentions, a synthetic customer list, a brand.

The files under ``data/`` are built by ``demo/build_sample.py`` from the IBM Twitter
customer-care conversations (Apache-2.0); ``SOURCE.md`` says where they come from and what was
changed, and ``LICENSE`` is the data's licence.
"""

from pathlib import Path

__all__ = ["data_path"]


def data_path(name: str) -> Path:
    """Return the path of a bundled demo data file.

    Args:
        name: The file name inside ``data/``, e.g. ``"mentions.jsonl"``,
            ``"customers.csv"`` or ``"brand.json"``.

    Returns:
        The path of that file inside the installed package; the file itself may be missing
        if the package was built without its data.
    """
    return Path(__file__).parent / "data" / name
