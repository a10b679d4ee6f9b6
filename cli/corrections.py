"""``listenwell correct``, ``listenwell corrections ...`` and ``listenwell eval corrections``.

Agents override a mention's sentiment, intent or theme; every override is kept
with who and when, is audit-logged, wins over the model's label, and builds
the workspace's labelled set. ``eval corrections`` shows the model's accuracy
on those corrections over time (drift); ``corrections recalibrate`` fits the
sentiment model's probabilities to them and keeps the fit only if it helps on
held-out corrections.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from . import CliError, state_of
from .io import actor

corrections_app = typer.Typer(
    help="Agents' corrections of labels: list, export, recalibrate.", no_args_is_help=True
)

_STAGE_HELP = "sentiment, intent or themes."
_EXPORT_COLUMNS = ["mention_id", "text", "stage", "label", "model_label", "actor", "created_at"]


def _setting(ctx: typer.Context, name: str, default: Any) -> Any:
    """``settings.corrections.<name>`` where that section exists, else ``default``."""
    section = getattr(state_of(ctx).settings, "corrections", None)
    value = getattr(section, name, None) if section is not None else None
    return default if value is None else value


def _labels_for(stage: str) -> tuple[str, ...] | None:
    from listenwell.store.corrections import INTENT_LABELS, SENTIMENT_LABELS

    return {"sentiment": SENTIMENT_LABELS, "intent": INTENT_LABELS}.get(stage)


def _check_stage(stage: str) -> str:
    from listenwell.store.corrections import STAGES

    name = stage.strip().lower()
    if name not in STAGES:
        raise CliError(f"--stage must be one of {', '.join(STAGES)}, got {stage!r}")
    return name


def correct(
    ctx: typer.Context,
    mention_id: Annotated[int, typer.Argument(help="The id of the mention to correct.")],
    stage: Annotated[str, typer.Option("--stage", help="The label to correct: " + _STAGE_HELP)],
    label: Annotated[
        str,
        typer.Option(
            "--label",
            help="The right label. sentiment: negative|neutral|positive; intent: "
            "complaint|question|praise|feature_request|other; themes: an active theme's id "
            "(a merged theme's id is followed to the theme it was merged into).",
        ),
    ],
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who makes the correction. Default: cli:<your user name>."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stored correction as JSON.")
    ] = False,
) -> None:
    """Override one label of one mention; the newest correction wins over the model.

    The correction is kept with who made it and when, next to what the model
    said at that moment, and written to the audit log. Re-running the models
    never overwrites it.
    """
    from listenwell.store.corrections import correct as store_correct

    engine = state_of(ctx).engine()
    c = store_correct(engine, mention_id, stage, label, by if by is not None else actor())
    if as_json:
        typer.echo(json.dumps(_correction_dict(c)))
        return
    if c.model_label is None:
        said = "the model had no result"
    elif c.model_label == c.label:
        said = "confirms the model"
    else:
        said = f"the model said {c.model_label}"
    typer.echo(f"mention {c.mention_id}: {c.stage} = {c.label} ({said}), by {c.actor}")


def _correction_dict(c: Any) -> dict[str, Any]:
    return {
        "id": c.id,
        "mention_id": c.mention_id,
        "stage": c.stage,
        "label": c.label,
        "model_label": c.model_label,
        "model_name": c.model_name,
        "model_version": c.model_version,
        "actor": c.actor,
        "created_at": c.created_at.isoformat(),
    }


@corrections_app.command("list")
def corrections_list(
    ctx: typer.Context,
    stage: Annotated[str | None, typer.Option("--stage", help="Only this stage.")] = None,
    history: Annotated[
        bool,
        typer.Option(
            "--history", help="Show every correction, not only the one in force per mention."
        ),
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """Show the newest corrections: mention, stage, model label -> agent label, who, when."""
    from listenwell.store.corrections import corrections_frame

    state = state_of(ctx)
    engine = state.engine()
    df = corrections_frame(
        engine,
        stage=_check_stage(stage) if stage is not None else None,
        current_only=not history,
        limit=limit,
        timeout_s=state.settings.query_timeout_s,
    )
    if as_json:
        rows = []
        for rec in df.to_dict("records"):
            rec["created_at"] = rec["created_at"].isoformat()
            rows.append({k: (None if v != v else v) for k, v in rec.items()})  # NaN -> null
        typer.echo(json.dumps(rows))
        return
    if df.empty:
        typer.echo("no corrections")
        return
    for r in df.itertuples():
        model = r.model_label if isinstance(r.model_label, str) else "(none)"
        typer.echo(
            f"{r.created_at:%Y-%m-%d %H:%M} mention {r.mention_id} {r.stage}: "
            f"{model} -> {r.label} by {r.actor}"
        )


@corrections_app.command("export")
def corrections_export(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="CSV file to write ('-' for stdout).")
    ],
    stage: Annotated[
        str | None, typer.Option("--stage", help="Only this stage (default: all).")
    ] = None,
) -> None:
    """Export the labelled set as CSV: the correction in force per mention and stage.

    Columns: mention_id, text, stage, label (the agent's), model_label (what
    the model said when corrected), actor, created_at.
    """
    from listenwell import store
    from listenwell.store.corrections import labelled_set

    engine = state_of(ctx).engine()
    examples = labelled_set(engine, _check_stage(stage) if stage is not None else None)
    handle = sys.stdout if str(output) == "-" else None
    try:
        f = handle or output.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(_EXPORT_COLUMNS)
        for e in examples:
            writer.writerow(
                [
                    e.mention_id,
                    e.text,
                    e.stage,
                    e.label,
                    e.model_label or "",
                    e.actor,
                    e.created_at.isoformat(),
                ]
            )
    finally:
        if handle is None:
            f.close()
    if handle is None:
        typer.echo(f"exported {len(examples):,} labelled mentions to {output}")
    store.record_audit(
        engine, actor(), "export.corrections", "file", str(output), {"rows": len(examples)}
    )


@corrections_app.command("recalibrate")
def corrections_recalibrate(
    ctx: typer.Context,
    stage: Annotated[
        str, typer.Option("--stage", help="The stage to recalibrate (only sentiment has one).")
    ] = "sentiment",
    min_corrections: Annotated[
        int | None,
        typer.Option(
            "--min",
            min=2,
            help="Refuse with fewer corrections than this for the current model "
            "(default: setting corrections.min_corrections, else 50).",
        ),
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option("--folds", min=2, help="Cross-validation folds (default 5)."),
    ] = None,
    l2: Annotated[
        float | None,
        typer.Option(
            "--l2", min=0.0, help="Penalty pulling the fit toward no change (default 1.0)."
        ),
    ] = None,
    temperature: Annotated[
        bool, typer.Option("--temperature", help="Fit a temperature as well as class biases.")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="NAME:VERSION",
            help="The model to recalibrate; default the one that wrote the newest result.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Fit and cross-validate, but save nothing.")
    ] = False,
    remove: Annotated[
        bool, typer.Option("--remove", help="Delete the stored recalibration of the model.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit the model's probabilities to the agents' corrections; keep the fit only if it helps.

    Per-class logit biases (and with --temperature a temperature) are fitted on
    the stored class probabilities of the corrected mentions, and checked by
    k-fold cross-validation on the corrections: the fit is saved only if it
    lowers held-out log-loss without lowering held-out accuracy. Both are
    printed, before and after. The sentiment stage applies a saved fit from
    its next run on (redo the stage to relabel stored mentions).
    """
    from listenwell.nlp.corrections import (
        DEFAULT_FOLDS,
        DEFAULT_L2,
        DEFAULT_MIN_CORRECTIONS,
        NotEnoughCorrectionsError,
        recalibrate,
        to_arrays,
    )
    from listenwell.store.corrections import (
        calibration_examples,
        current_model,
        delete_calibration,
        save_calibration,
    )

    stage = _check_stage(stage)
    labels = _labels_for(stage)
    if stage != "sentiment" or labels is None:
        raise CliError(f"only sentiment can be recalibrated; {stage} has no class probabilities")
    engine = state_of(ctx).engine()
    if model is not None:
        name, sep, version = model.rpartition(":")
        if not sep or not name or not version:
            raise CliError(f"--model must be NAME:VERSION, got {model!r}")
    else:
        newest = current_model(engine, stage)
        if newest is None:
            raise CliError(f"no {stage} results are stored yet; run `listenwell enrich` first")
        name, version = newest
    if remove:
        gone = delete_calibration(engine, stage, name, version, actor=actor())
        typer.echo(
            f"removed the {stage} recalibration of {name} {version}"
            if gone
            else f"no {stage} recalibration is stored for {name} {version}"
        )
        return
    examples = calibration_examples(engine, stage, name, version)
    probs, y = to_arrays(((e.probs, e.label) for e in examples), labels)
    min_n = (
        min_corrections
        if min_corrections is not None
        else int(_setting(ctx, "min_corrections", DEFAULT_MIN_CORRECTIONS))
    )
    k = folds if folds is not None else int(_setting(ctx, "folds", DEFAULT_FOLDS))
    penalty = l2 if l2 is not None else float(_setting(ctx, "l2", DEFAULT_L2))
    try:
        result = recalibrate(
            probs, y, labels, min_corrections=min_n, folds=k, l2=penalty, temperature=temperature
        )
    except NotEnoughCorrectionsError as exc:
        raise CliError(f"{stage} model {name} {version}: {exc}") from None
    agreement = float((probs.argmax(axis=1) == y).mean())
    saved = result.accepted and not dry_run
    if saved:
        save_calibration(
            engine, stage, name, version, result.calibration.to_params(), result.n, actor=actor()
        )
    if as_json:
        out = result.as_dict()
        out.update(
            stage=stage, model=f"{name} {version}", saved=saved, model_agreement=round(agreement, 6)
        )
        typer.echo(json.dumps(out))
        return
    cv = result.cv
    typer.echo(f"{stage} model {name} {version}: {result.n:,} corrections, {cv.folds} folds")
    typer.echo(f"  held-out log-loss  {cv.nll_before:.4f} -> {cv.nll_after:.4f}")
    typer.echo(f"  held-out accuracy  {cv.accuracy_before:.3f} -> {cv.accuracy_after:.3f}")
    cal = result.calibration
    biases = ", ".join(f"{lab} {b:+.3f}" for lab, b in zip(cal.labels, cal.bias, strict=True))
    typer.echo(f"  fit: biases {biases}; temperature {cal.temperature:.3f}")
    if saved:
        typer.echo("  saved: the sentiment stage uses it from its next run")
    elif result.accepted:
        typer.echo("  would be saved (--dry-run: nothing written)")
    else:
        typer.echo(f"  {result.reason}; nothing saved")
    if agreement < 0.5:
        typer.echo(
            f"  note: the model agreed with only {agreement:.0%} of these corrections; if agents "
            "record only the labels they disagree with, the fit learns that selection. Confirm "
            "right labels too (correct with the model's label).",
            err=True,
        )


def eval_corrections(
    ctx: typer.Context,
    stage: Annotated[str, typer.Option("--stage", help="The stage to score: " + _STAGE_HELP)] = (
        "sentiment"
    ),
    period: Annotated[
        str, typer.Option("--period", help="Group corrections by week (ISO) or month.")
    ] = "week",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The model's accuracy on the agents' own corrections, per week or month: drift.

    Uses the correction in force per mention, compares the model's label at
    the time with the agent's, and reports overall accuracy, per-class recall
    and per-period accuracy, each with n and a 95% Wilson interval. Agents
    mostly correct wrong labels, so read the level with care and the trend
    with confidence.
    """
    from listenwell.nlp.corrections import PERIODS, drift_report
    from listenwell.store.corrections import iter_corrections

    stage = _check_stage(stage)
    if period not in PERIODS:
        raise CliError(f"--period must be week or month, got {period!r}")
    engine = state_of(ctx).engine()
    report = drift_report(
        iter_corrections(engine, stage=stage, current_only=True),
        stage=stage,
        period=period,
        labels=_labels_for(stage),
    )
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    if report.n == 0:
        extra = f" ({report.unscored} made before the model had a label)" if report.unscored else ""
        typer.echo(f"no scored {stage} corrections yet{extra}")
        return
    assert report.accuracy is not None
    typer.echo(
        f"{stage}: model accuracy {report.accuracy:.3f} on {report.n:,} corrections "
        f"(95% CI {report.low:.3f}-{report.high:.3f})"
    )
    for p in report.periods:
        typer.echo(
            f"  {p.period:<9} n={p.n:<5} accuracy {p.accuracy:.3f} ({p.low:.3f}-{p.high:.3f})"
        )
    recalls = ", ".join(f"{c.label} {c.recall:.2f} (n={c.n})" for c in report.per_class if c.n)
    typer.echo(f"  recall by class: {recalls}")


def register(app: typer.Typer) -> None:
    """Add ``correct`` and ``corrections`` to the root app, and ``corrections`` to ``eval``."""
    from .nlp import eval_app

    app.command("correct")(correct)
    app.add_typer(corrections_app, name="corrections")
    if "corrections" not in {c.name for c in eval_app.registered_commands}:
        eval_app.command("corrections")(eval_corrections)
