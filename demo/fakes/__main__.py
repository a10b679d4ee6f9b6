"""Serve the fake Reddit, X and App Store APIs with seeded data, for demos and manual runs.

Run::

    python -m listenwell.demo.fakes --mentions 600

It prints the ``sources:`` settings that point the real collectors at the
fakes, then serves until Ctrl-C. Every 100th Reddit post and X post is
malformed, so quarantine has something to show. ``--latency`` paces every
answer like a distant API.
"""

from __future__ import annotations

import argparse
import json
import threading

from .appstore import FakeAppStore
from .harness import sources_settings
from .reddit import FakeReddit
from .x import FakeX


def main() -> None:
    """Start the fakes and print the matching settings."""
    parser = argparse.ArgumentParser(
        prog="python -m listenwell.demo.fakes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mentions", type=int, default=600, help="Items per source.")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="Seconds every answer waits (default 0)."
    )
    args = parser.parse_args()
    reddit, x, appstore = FakeReddit(), FakeX(), FakeAppStore()
    for fake in (reddit, x, appstore):
        fake.server.latency = args.latency
    for _ in range(max(1, args.mentions // 100)):
        reddit.add_posts(100)
        reddit.add_malformed_post()
        x.add_posts(100, long_every=7)
        x.add_malformed_post()
    appstore.add_reviews(min(args.mentions, 500))
    for fake in (reddit, x, appstore):
        fake.server.start()
    settings = {"sources": sources_settings(reddit, x, appstore)}
    print(json.dumps(settings, indent=2), flush=True)  # JSON is valid YAML
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for fake in (reddit, x, appstore):
            fake.server.stop()


if __name__ == "__main__":
    main()
