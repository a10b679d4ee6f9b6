"""``listenwell enrich`` and ``listenwell eval``: run the NLP stages, and measure them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from . import CliError, state_of
from .io import progress

eval_app = typer.Typer(help="Measure the models on labelled data.", no_args_is_help=True)


def _options(ctx: typer.Context) -> Any:
    from listenwell.nlp import NlpOptions

    return NlpOptions.from_settings(state_of(ctx).settings)


def run_with_progress(pipeline: Any, engine: Any, *, redo: str | None = None) -> Any:
    """Run (or redo one stage of) a pipeline with one progress bar per phase on stderr.

    Returns:
        The pipeline's :class:`~listenwell.nlp.pipeline.EnrichReport`.
    """
    with progress("enriching") as prog:
        tasks = []
        for names, pending in pipeline.pending_by_phase(engine):
            label = ", ".join(names) if names else "embeddings"
            tasks.append(prog.add_task(label, total=pending if redo is None else None))

        def advance(batch: Any) -> None:
            prog.advance(tasks[min(batch.phase, len(tasks) - 1)], batch.mentions)

        if redo is None:
            return pipeline.run(engine, on_batch=advance)
        return pipeline.redo(engine, redo, on_batch=advance)


def refresh_dashboard_counts(engine: Any, settings: Any) -> Any:
    """Count the new labels into the dashboard's daily counts, with a progress bar.

    Returns:
        The :class:`~listenwell.store.rollup.RefreshReport`.
    """
    from listenwell.store.rollup import refresh
    from listenwell.store.voice import voice_parties

    with progress("dashboard counts", unit="days") as prog:
        task = prog.add_task("days", total=None)
        return refresh(
            engine,
            parties=voice_parties(settings.brand),
            progress=lambda done, total: prog.update(task, completed=done, total=total),
        )


def enrich(
    ctx: typer.Context,
    redo: Annotated[
        str | None,
        typer.Option(
            "--redo",
            metavar="STAGE",
            help="Delete one stage's results (e.g. sentiment, or embeddings) and compute "
            "them again, after a model change.",
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", min=1, help="Mentions per batch and per transaction."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Run the NLP stages over mentions that are not enriched yet.

    Work is done in batches, each committed in one transaction with its
    embeddings, so an interrupted run resumes where it stopped without doing
    anything twice. Embeddings are computed once per mention and reused.
    """
    from dataclasses import replace

    from listenwell.nlp import NlpError
    from listenwell.nlp.pipeline import build_pipeline

    state = state_of(ctx)
    engine = state.engine()
    options = _options(ctx)
    if batch_size is not None:
        options = replace(options, batch_size=batch_size)
    try:
        pipeline = build_pipeline(options, state.settings)
        report = run_with_progress(pipeline, engine, redo=redo)
    except NlpError as exc:
        raise CliError(str(exc)) from None
    refresh_dashboard_counts(engine, state.settings)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    parts = [f"{n:,} {name}" for name, n in sorted(report.results.items())]
    if pipeline.embedder is not None:
        parts.insert(0, f"{report.embedded:,} embedded")
    done = ", ".join(parts) if parts else "nothing to do"
    typer.echo(f"enriched {report.mentions:,} mentions: {done}")


@eval_app.command("sentiment")
def eval_sentiment(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A CSV file with a header row.")],
    text_column: Annotated[str, typer.Option("--text-column", help="Column with the text.")],
    label_column: Annotated[
        str, typer.Option("--label-column", help="Column with the gold label.")
    ],
    model: Annotated[
        str,
        typer.Option("--model", help="finetuned (the product's model) or vader (the baseline)."),
    ] = "finetuned",
    labels: Annotated[
        str,
        typer.Option(
            "--labels",
            help="Label format: auto, names (negative|neutral|positive), signed (-1/0/1) or "
            "tweeteval (0/1/2). auto takes -1 to mean signed and 2 to mean tweeteval, and "
            "refuses a column of only 0 and 1 as ambiguous.",
        ),
    ] = "auto",
) -> None:
    """Score a sentiment model on a labelled CSV; prints one JSON object.

    The object has macro_recall, macro_f1, accuracy and n. Rows with an
    empty label are skipped.
    """
    from listenwell.nlp import NlpError, create_stage
    from listenwell.nlp.evaluate import (
        SCHEMES,
        evaluate_sentiment,
        normalise_labels,
        read_labelled_csv,
    )

    if model not in ("finetuned", "vader"):
        raise CliError(f"--model must be finetuned or vader, got {model!r}")
    if labels not in SCHEMES:
        raise CliError(f"--labels must be one of {', '.join(SCHEMES)}, got {labels!r}")
    options = _options(ctx)
    try:
        texts, raw = read_labelled_csv(path, text_column, label_column)
        gold = normalise_labels(raw, labels)
        if not gold:
            raise CliError(f"{path} has no labelled rows")
        stage = create_stage(
            f"sentiment.{model}",
            model_dir=options.sentiment_model_dir,
            low_confidence=options.low_confidence,
            threads=options.threads,
        )
        with progress("evaluating") as prog:
            prog.add_task(path.name, total=None)
            result = evaluate_sentiment(stage, texts, gold)
    except NlpError as exc:
        raise CliError(str(exc)) from None
    result["model"] = f"{stage.model_name} {stage.model_version}"
    typer.echo(json.dumps(result))


def explain(
    ctx: typer.Context,
    mention_id: Annotated[
        int | None, typer.Argument(help="The stored mention to explain (its id).")
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="Explain this text instead of a stored mention.")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, max=50, help="How many words.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the words that drove a sentiment prediction.

    Each word is left out in turn; its weight is how much the probability of
    the predicted label drops without it (positive: it pushed toward the label).
    Uses the configured sentiment model (finetuned or vader).
    """
    from listenwell.nlp import NlpError, create_stage

    if (mention_id is None) == (text is None):
        raise CliError("give a mention id or --text, not both")
    options = _options(ctx)
    if text is None:
        from sqlalchemy import select

        from listenwell.store.models import MentionRow

        with state_of(ctx).engine().connect() as conn:
            found = conn.execute(
                select(MentionRow.text).where(MentionRow.id == mention_id)
            ).scalar_one_or_none()
        if found is None:
            raise CliError(f"no mention has id {mention_id}")
        text = found
    if options.sentiment_model == "off":
        raise CliError("sentiment is switched off (nlp.sentiment_model: off)")
    try:
        stage = create_stage(
            f"sentiment.{options.sentiment_model}",
            model_dir=options.sentiment_model_dir,
            low_confidence=options.low_confidence,
            threads=options.threads,
        )
        result = stage.run([text])[0]
        words = stage.explain(text, top)  # type: ignore[attr-defined]
    except NlpError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        out = {
            "label": result.label,
            "score": result.score,
            "model": f"{stage.model_name} {stage.model_version}",
            "words": [{"word": w, "weight": round(float(x), 4)} for w, x in words],
        }
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    score = f" ({result.score:.2f})" if result.score is not None else ""
    typer.echo(f"{result.label}{score} by {stage.model_name} {stage.model_version}")
    for word, weight in words:
        typer.echo(f"  {weight:+.3f}  {word}")


def register(app: typer.Typer) -> None:
    """Add ``enrich``, ``explain`` and the ``eval`` commands to the root app."""
    app.command("enrich")(enrich)
    app.command("explain")(explain)
    app.add_typer(eval_app, name="eval")
