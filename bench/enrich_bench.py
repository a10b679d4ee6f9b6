"""Benchmark `listenwell enrich`: throughput against the raw model forward passes, and peak RSS.

Loads N real brand tweets (the airline tweets in ``../shared``, or the bundled demo
mentions repeated when ``../shared`` is absent) into a fresh database, then in ONE
process, on the same texts and the same batch size:

1. times the raw MiniLM forward pass (the packaged embedder, tokenised inside,
   nothing else), and the fine-tuned sentiment model's raw forward pass;
2. times the whole pipeline (``build_pipeline`` as ``listenwell enrich`` builds it:
   DB reads, embeddings, every stage, DB writes), models already loaded, and
   how much of that time the two encoders took inside it (the rest is the
   pipeline's own work: DB, language, links, intent, themes, Python).

Then it runs the real command (``listenwell --config C enrich --json``) on a second
fresh database in a child process and reads the child's peak RSS from wait4().

    python bench/enrich_bench.py                   # 10,000 mentions, SQLite, 2 threads
    python bench/enrich_bench.py --mentions 2000 --db postgres

Prints a JSON object with every figure; copy them into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _db import add_db_options, db_kinds, fresh_db  # bench/_db.py: throw-away databases

REPO = Path(__file__).resolve().parents[1]


def load_texts(shared: Path, n: int) -> tuple[list[str], str]:
    """``n`` real texts and where they came from."""
    airline = shared / "data" / "twitter-airline-sentiment" / "Tweets.csv"
    if airline.is_file():
        with airline.open(encoding="utf-8", newline="") as f:
            texts = [row["text"] for row in csv.DictReader(f)]
        source = f"airline tweets ({airline})"
    else:
        demo = REPO / "demo" / "data" / "mentions.jsonl"
        with demo.open(encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f if line.strip()]
        source = f"bundled demo mentions ({demo})"
    out = [texts[i % len(texts)] for i in range(n)]
    return out, source + (" (repeated)" if n > len(texts) else "")


def write_jsonl(path: Path, texts: list[str], *, prefix: str = "bench") -> None:
    """The texts as mentions a ``listenwell import mentions`` reads."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as f:
        for i, text in enumerate(texts):
            rec = {
                "source": "x",
                "external_id": f"{prefix}-{i}",
                "created_at": (start + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
                "author_handle": f"@user{i % 997}",
                "text": text,
            }
            f.write(json.dumps(rec) + "\n")


def listenwell(config: Path, *args: str) -> tuple[float, float, str]:
    """Run the real command in a child; returns (wall s, peak RSS MiB, stdout)."""
    exe = shutil.which("listenwell", path=str(Path(sys.executable).parent)) or "listenwell"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [exe, "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"listenwell {' '.join(args)} failed: {out[-500:]}")
    return wall, usage.ru_maxrss / 1024, out


@contextlib.contextmanager
def model_timer() -> Iterator[dict[str, float]]:
    """Seconds spent inside the two encoders (embedder and sentiment logits) meanwhile."""
    from listenwell.nlp.embeddings import Embedder
    from listenwell.nlp.sentiment import SentimentModel

    spent = {"embed": 0.0, "sentiment": 0.0}
    originals = (Embedder.encode, SentimentModel.logits)

    def timed(fn: Any, key: str) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[key] += time.perf_counter() - t0

        return wrapper

    Embedder.encode = timed(originals[0], "embed")  # type: ignore[method-assign]
    SentimentModel.logits = timed(originals[1], "sentiment")  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        Embedder.encode, SentimentModel.logits = originals  # type: ignore[method-assign]


def measure(kind: str, texts: list[str], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every figure for one database kind."""
    from dataclasses import replace

    from listenwell import store
    from listenwell.nlp import NlpOptions
    from listenwell.nlp.embeddings import Embedder, set_threads
    from listenwell.nlp.pipeline import build_pipeline
    from listenwell.nlp.sentiment import load_sentiment_model

    load_before = str(os.getloadavg())
    data = work / "mentions.jsonl"
    write_jsonl(data, texts)
    results: dict[str, Any] = {"db": kind}

    # 1. Raw forward passes, models warmed up first (loading is not throughput).
    set_threads(args.threads)
    embedder = Embedder(batch_size=args.model_batch, threads=args.threads)
    embedder.encode(texts[:64])
    t0 = time.perf_counter()
    embedder.encode(texts)
    t_embed = time.perf_counter() - t0
    sentiment = load_sentiment_model()
    sentiment.logits(texts[:64], batch_size=args.model_batch)
    t0 = time.perf_counter()
    sentiment.logits(texts, batch_size=args.model_batch)
    t_sent = time.perf_counter() - t0

    # 2. The pipeline, in this process, on a fresh database.
    url, drop = fresh_db(kind, work, args.pg)
    try:
        config = work / f"{kind}.yaml"
        config.write_text(f"database_url: '{url}'\n", encoding="utf-8")
        listenwell(config, "db", "upgrade")
        listenwell(config, "import", "mentions", str(data), "--json")
        engine = store.connect(url)
        options = replace(NlpOptions(threads=args.threads), batch_size=args.batch_size)
        pipeline = build_pipeline(options)
        pipeline.embedder.batch_size = args.model_batch  # type: ignore[union-attr]
        if args.window is not None:
            pipeline.window = max(args.window, args.batch_size)
        with model_timer() as in_models:
            t0 = time.perf_counter()
            report = pipeline.run(engine)
            t_pipe = time.perf_counter() - t0
        m_pipe = sum(in_models.values())
        # 2b. Steady state: the same texts arrive again as new mentions; the themes
        # are fitted now, so this is the everyday run (no first fit).
        again = work / "again.jsonl"
        write_jsonl(again, texts, prefix="again")
        listenwell(config, "import", "mentions", str(again), "--json")
        with model_timer() as in_models:
            t0 = time.perf_counter()
            pipeline.run(engine)
            t_steady = time.perf_counter() - t0
        m_steady = sum(in_models.values())
        engine.dispose()
    finally:
        drop()

    # 3. The real command in a child process, for its peak RSS (and its wall time with loading).
    url, drop = fresh_db(kind, work, args.pg)
    try:
        config = work / f"{kind}-cli.yaml"
        config.write_text(
            f"database_url: '{url}'\nnlp:\n  threads: {args.threads}\n"
            f"  batch_size: {args.batch_size}\n",
            encoding="utf-8",
        )
        listenwell(config, "db", "upgrade")
        listenwell(config, "import", "mentions", str(data), "--json")
        cli_wall, cli_rss, cli_out = listenwell(config, "enrich", "--json")
    finally:
        drop()

    n = len(texts)
    t_models = t_embed + t_sent
    results.update(
        {
            "mentions": n,
            "stages": pipeline.stage_names,
            "raw_minilm_per_s": round(n / t_embed, 1),
            "raw_sentiment_per_s": round(n / t_sent, 1),
            "raw_models_per_s": round(n / t_models, 1),
            "pipeline_per_s": round(n / t_pipe, 1),
            "pipeline_vs_one_minilm_pass": round(t_embed / t_pipe, 3),
            "pipeline_vs_its_model_passes": round(t_models / t_pipe, 3),
            "overhead_share": round(1 - t_models / t_pipe, 3),
            "steady_per_s": round(n / t_steady, 1),
            "steady_vs_one_minilm_pass": round(t_embed / t_steady, 3),
            "steady_vs_its_model_passes": round(t_models / t_steady, 3),
            "steady_overhead_share": round(1 - t_models / t_steady, 3),
            "batch_size": pipeline.batch_size,
            "window": pipeline.window,
            "pipeline_encoders_s": round(m_pipe, 1),
            "pipeline_rest_s": round(t_pipe - m_pipe, 1),
            "pipeline_rest_share": round(1 - m_pipe / t_pipe, 3),
            "steady_encoders_s": round(m_steady, 1),
            "steady_rest_s": round(t_steady - m_steady, 1),
            "steady_rest_share": round(1 - m_steady / t_steady, 3),
            "raw_models_s": round(t_models, 1),
            "load_before_after": f"{load_before} / {os.getloadavg()}",
            "pipeline_results": report.results,
            "cli_wall_s_with_model_load": round(cli_wall, 1),
            "cli_peak_rss_mib": round(cli_rss, 1),
            "cli_report": json.loads(cli_out.strip().splitlines()[-1]),
        }
    )
    return results


def evaluate(shared: Path, **options: Any) -> dict[str, Any]:
    """The default measurement (10,000 mentions, SQLite, 2 threads) for bench/evaluate.py."""
    args = _parser().parse_args([])
    args.shared = shared
    for key, value in options.items():
        setattr(args, key, value)
    texts, source = load_texts(args.shared, args.mentions)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure("sqlite", texts, args, Path(tmp))
    result["data"] = source
    result["threads"] = args.threads
    result["model_batch"] = args.model_batch
    return result


def markdown(r: dict[str, Any]) -> str:
    """The enrich section of docs/benchmarks.md."""
    return f"""### Enrichment throughput and memory

`python bench/enrich_bench.py` ({r["mentions"]:,} mentions from {r["data"]}; SQLite;
{r["threads"]} torch threads; {r["model_batch"]} texts per forward pass; stages
{", ".join(r["stages"])} plus the stored embeddings; {r["batch_size"]} mentions per
transaction, read {r["window"]} at a time and regrouped by token length). All timings in
one process, models loaded first.

| measurement | mentions/s |
| --- | --- |
| raw MiniLM forward pass (packaged embedder alone) | {r["raw_minilm_per_s"]} |
| raw fine-tuned sentiment forward pass alone | {r["raw_sentiment_per_s"]} |
| both raw forward passes back to back | {r["raw_models_per_s"]} |
| **`listenwell enrich`, first run** (DB reads, both models, every stage incl. the first themes fit, DB writes) | **{r["pipeline_per_s"]}** |
| **`listenwell enrich`, everyday run** (the same texts again as new mentions; themes already fitted) | **{r["steady_per_s"]}** |

- Pipeline / both raw model passes: first run **{r["pipeline_vs_its_model_passes"]:.0%}**,
  everyday run **{r["steady_vs_its_model_passes"]:.0%}**; the pipeline's own overhead (DB,
  tokenising, the non-transformer stages, the first themes fit) is
  {r["overhead_share"]:.0%} of the first run's time and {r["steady_overhead_share"]:.0%} of an
  everyday run's (target: under 20 %). Of the pipeline's time, the two encoders themselves
  took {r["pipeline_encoders_s"]} s (first run) and {r["steady_encoders_s"]} s (everyday run),
  against {r["raw_models_s"]} s for the raw passes (the raw passes sort all
  {r["mentions"]:,} texts by length at once; the pipeline only a window at a time); the rest
  (DB, language, links, intent, themes, Python) took {r["pipeline_rest_s"]} s and
  {r["steady_rest_s"]} s.
- Pipeline / one raw MiniLM pass: first run {r["pipeline_vs_one_minilm_pass"]:.0%}, everyday
  run {r["steady_vs_one_minilm_pass"]:.0%} (target 80 %, not met). The pipeline runs
  two MiniLM-sized encoders (the sentence embedder shared by themes, intent and linking,
  and the fine-tuned sentiment classifier), so this ratio cannot exceed about 50 %.
- Peak RSS of the real command (`listenwell enrich --json` in a child process, wait4):
  **{r["cli_peak_rss_mib"]:,.0f} MiB** (target < 2 GiB); its wall time including model
  loading: {r["cli_wall_s_with_model_load"]} s."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=10_000, help="Mentions to enrich.")
    parser.add_argument("--threads", type=int, default=2, help="Torch CPU threads.")
    parser.add_argument(
        "--batch-size", type=int, default=256, help="Pipeline batch (mentions per transaction)."
    )
    parser.add_argument(
        "--model-batch", type=int, default=64, help="Texts per forward pass (both models)."
    )
    parser.add_argument(
        "--shared", type=Path, default=REPO.parent / "shared", help="The shared data folder."
    )
    parser.add_argument(
        "--window",
        type=int,
        default=None,
        help="Pipeline read-ahead window in mentions (default: as `listenwell enrich`, "
        "8 x --batch-size; --window 0 or the batch size reads one batch at a time).",
    )
    add_db_options(parser, default="sqlite")
    return parser


def main() -> None:
    """Parse the options, run the measurements, print JSON."""
    args = _parser().parse_args()
    texts, source = load_texts(args.shared, args.mentions)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"# {len(texts):,} texts from {source}; {machine}", file=sys.stderr)
    for kind in db_kinds(args.db):
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(measure(kind, texts, args, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
