"""``python -m listenwell``: the same as the ``listenwell`` command."""

from listenwell.cli import main

if __name__ == "__main__":
    main()
