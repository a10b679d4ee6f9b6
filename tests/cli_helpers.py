"""Run the real `listenwell` command inside a test (pytest puts tests/ on the path)."""

from __future__ import annotations

from listenwell.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``listenwell ARGS`` in-process; returns (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
