"""Feedback themes: clusters of stored embeddings, labelled with top terms, with stable ids.

How themes are made (:func:`refit`):

1. **Cluster** every stored MiniLM vector with k-means on unit vectors
   (:func:`cluster`). The number of themes is a setting, or chosen by the
   cosine silhouette of k-means fits on a sample (``k_min`` to ``k_max``).
   A refit starts k-means from the current themes' centroids, so themes that
   still exist in the data come back where they were.
2. **Assign** each mention to the nearest theme centroid by cosine
   (:func:`assign`); below ``threshold`` it stays unthemed (label ``None``).
3. **Label** each theme with its top terms by class-based TF-IDF
   (:func:`top_terms`, the c-TF-IDF of BERTopic): the texts of a theme are one
   document; @handles, URLs, numbers, English stop words, social-media filler
   and the brand's own names are left out.
4. **Map** the new clusters to the old themes by shared members
   (:func:`match`): one old to one new keeps the id; one old to several new is
   a *split* (the old id keeps the largest part, the rest get new ids); several
   old to one new is a *merge* (the survivor keeps its id, the others become
   ``merged`` with ``merged_into``); a new cluster nobody maps to is a new
   theme; an old theme nothing maps from is *retired*. Every step is a
   ``theme_events`` row. **Pinned** themes (and themes a user defined, which
   are pinned when created) are frozen: a refit never merges, retires,
   splits or relabels them; their centroids stay as they are.
5. **Re-assign** every mention to the resulting themes (the ``themes``
   enrichments are rewritten in the same transaction).

User actions (:func:`name_theme`, :func:`merge_themes`, :func:`pin_theme`,
:func:`define_theme`) each write a theme event with the actor and an audit row.

The stage (:class:`ThemeAssigner`, registry ``themes.kmeans``) runs in phase 1
of the pipeline, after every pending mention has its embedding: its
``prepare`` fits themes the first time there are at least ``min_mentions``
embedded mentions (and assigns them all), otherwise loads the active themes;
``run`` assigns each new mention to the nearest theme. With too few mentions
it labels nothing (label ``None``, ``data.reason`` says why) until a fit.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from listenwell import store
from listenwell.store import themes as theme_store

from .base import NlpError, StageResult

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

__all__ = [
    "MODEL_NAME",
    "SOCIAL_STOP_WORDS",
    "Clustering",
    "NotEnoughMentionsError",
    "RefitReport",
    "ThemeAssigner",
    "ThemeError",
    "ThemeOptions",
    "Transition",
    "assign",
    "assign_all",
    "brand_stop_words",
    "choose_k",
    "clean_text",
    "cluster",
    "define_theme",
    "label_for",
    "match",
    "merge_themes",
    "name_theme",
    "new_fit_id",
    "normalize",
    "pin_theme",
    "refit",
    "representatives",
    "top_terms",
]

MODEL_NAME = "listenwell-themes-kmeans"
"""Stored as ``model_name`` with every ``themes`` result; ``model_version`` is the fit id."""

SOCIAL_STOP_WORDS = frozenset(
    """amp rt via im ive id ill dont cant didnt doesnt isnt wont wasnt arent havent hasnt
    couldnt shouldnt wouldnt youre youve thats theres whats lets ur u pls plz just got get
    really gt lt http https www com co don didn doesn isn wasn aren ll ve re""".split()
)
"""Filler words of social posts that c-TF-IDF would otherwise rank (added to English stop words)."""

_URL = re.compile(r"https?://\S+|\bwww\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w+")
_APOSTROPHE = re.compile(r"['\u2019`]")
_NUMBERISH = re.compile(r"\b\w*\d\w*\b")
_PUNCT = re.compile(r"[^\w\s]+")
_WS = re.compile(r"\s+")
_TOKEN = r"(?u)\b[a-zA-Z][a-zA-Z]+\b"


class ThemeError(NlpError):
    """A theme action cannot be done (unknown or inactive theme, bad input)."""


class NotEnoughMentionsError(ThemeError):
    """There are too few embedded mentions to fit themes."""


@dataclass(frozen=True, slots=True)
class ThemeOptions:
    """How themes are fitted and assigned.

    Attributes:
        n_themes: The number of clusters; ``None`` chooses it by silhouette.
        k_min: Smallest number of themes the automatic choice considers.
        k_max: Largest number of themes the automatic choice considers (also
            capped at one theme per ``min_theme_size`` mentions).
        min_mentions: Fewer embedded mentions than this fit no themes.
        min_theme_size: Mentions per theme the automatic choice allows at least.
        threshold: A mention whose cosine similarity to the nearest centroid is
            below this stays unthemed.
        n_terms: Terms kept per theme; the label is the first three.
        sample_size: Mentions the silhouette is computed on.
        min_share: In a refit, the share of an old theme's members that must
            land in a new cluster for the two to be linked.
        stop_words: More words to leave out of labels (brand and product names).
        seed: Random seed of k-means and the sample.
        threads: CPU threads for k-means (``None``: the library's default).
    """

    n_themes: int | None = None
    k_min: int = 5
    k_max: int = 25
    min_mentions: int = 50
    min_theme_size: int = 10
    threshold: float = 0.3
    n_terms: int = 8
    sample_size: int = 3000
    min_share: float = 0.2
    stop_words: tuple[str, ...] = ()
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.n_themes is not None and self.n_themes < 1:
            raise ValueError("n_themes must be at least 1")
        if not 2 <= self.k_min <= self.k_max:
            raise ValueError("need 2 <= k_min <= k_max")
        if self.min_mentions < 2:
            raise ValueError("min_mentions must be at least 2")
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be a cosine similarity in [-1, 1]")
        if not 0.0 < self.min_share <= 1.0:
            raise ValueError("min_share must be in (0, 1]")

    @classmethod
    def from_settings(cls, settings: Any) -> ThemeOptions:
        """Read ``settings.nlp.themes_*`` where declared, and the brand's names as stop words.

        Settings read (each optional): ``nlp.themes_count`` (``0`` or absent:
        automatic), ``nlp.themes_min_mentions``, ``nlp.themes_threshold``,
        ``nlp.themes_stop_words``, ``nlp.threads``, and ``brand.name``,
        ``brand.keywords`` and ``brand.competitors`` (their words are left out
        of labels).
        """
        nlp = getattr(settings, "nlp", None)
        brand = getattr(settings, "brand", None)
        values: dict[str, Any] = {}
        count = getattr(nlp, "themes_count", None)
        if count:
            values["n_themes"] = int(count)
        for key, attr in (
            ("min_mentions", "themes_min_mentions"),
            ("threshold", "themes_threshold"),
            ("threads", "threads"),
        ):
            value = getattr(nlp, attr, None)
            if value is not None:
                values[key] = value
        words: list[str] = list(getattr(nlp, "themes_stop_words", None) or [])
        if brand is not None:
            words.append(str(getattr(brand, "name", "") or ""))
            words.extend(getattr(brand, "keywords", None) or [])
            for name, keywords in (getattr(brand, "competitors", None) or {}).items():
                words.append(name)
                words.extend(keywords)
        values["stop_words"] = brand_stop_words(words)
        return cls(**values)


def brand_stop_words(names: Iterable[str]) -> tuple[str, ...]:
    """The lower-case words of brand names, keywords and handles (``@Acme_Help`` -> acme, help)."""
    out: set[str] = set()
    for name in names:
        text = _APOSTROPHE.sub("", str(name)).lower()
        joined = re.sub(r"[^a-z]", "", text)
        if len(joined) > 1:
            out.add(joined)
        out.update(w for w in re.findall(r"[a-z]+", text) if len(w) > 1)
    return tuple(sorted(out))


# --------------------------------------------------------------------------- pure maths


def normalize(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    arr = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return np.asarray(arr / np.where(norms > 0, norms, 1.0), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Clustering:
    """The result of :func:`cluster`.

    Attributes:
        labels: The cluster index of each vector.
        centroids: ``(k, dim)`` unit-length cluster centres.
        silhouette: Cosine silhouette per k tried (empty when k was given).
    """

    labels: npt.NDArray[np.int64]
    centroids: npt.NDArray[np.float32]
    silhouette: dict[int, float] = field(default_factory=dict)

    @property
    def k(self) -> int:
        """The number of clusters."""
        return int(self.centroids.shape[0])

    def members(self) -> dict[int, npt.NDArray[np.int64]]:
        """Row indices of each cluster."""
        return {j: np.flatnonzero(self.labels == j) for j in range(self.k)}


def _limits(threads: int | None) -> Any:
    from contextlib import nullcontext

    if threads is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def choose_k(
    vectors: npt.ArrayLike,
    *,
    k_min: int = 5,
    k_max: int = 25,
    sample_size: int = 3000,
    seed: int = 0,
) -> tuple[int, dict[int, float]]:
    """The number of clusters with the best cosine silhouette on a sample.

    Each k from ``k_min`` to ``k_max`` (capped below the sample size; every
    second k where the range is wider than 10) is fitted with k-means on the
    sample and scored there, on cosine distances computed once; ties go to the
    smaller k.

    Returns:
        ``(best k, {k: silhouette})``.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = normalize(vectors)
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    sample = x[rng.choice(n, sample_size, replace=False)] if n > sample_size else x
    hi = min(k_max, sample.shape[0] - 1)
    lo = min(k_min, hi)
    if hi < 2:
        return max(1, min(k_min, n)), {}
    scores: dict[int, float] = {}
    # Unit vectors: cosine distance is 1 - dot product (clipped against rounding).
    distances = np.clip(1.0 - sample @ sample.T, 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    start = max(2, lo)
    step = 1 if hi - start <= 10 else 2
    for k in range(start, hi + 1, step):
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(sample)
        if len(set(labels.tolist())) < 2:
            continue
        scores[k] = float(silhouette_score(distances, labels, metric="precomputed"))
    if not scores:
        return max(2, lo), {}
    best = max(scores.values())
    return min(k for k, s in scores.items() if s == best), scores


def _seeded_init(
    x: npt.NDArray[np.float32], init: npt.NDArray[np.float32], k: int, seed: int
) -> npt.NDArray[np.float32]:
    """``k`` starting centres from ``init`` (rows in priority order), cut or topped up.

    Too many: the first row, then each time the row farthest from those
    chosen. Too few: extra centres drawn from ``x`` k-means++ style.
    """
    rows = normalize(init)
    if rows.shape[0] > k:
        chosen = [0]
        while len(chosen) < k:
            nearest = (rows @ rows[chosen].T).max(axis=1)
            nearest[chosen] = np.inf
            chosen.append(int(nearest.argmin()))
        rows = rows[chosen]
    rng = np.random.default_rng(seed)
    centres = list(rows)
    while len(centres) < k:
        if centres:
            weight = np.clip(1.0 - (x @ np.stack(centres).T).max(axis=1), 0, None) ** 2
        else:
            weight = np.ones(x.shape[0])
        total = float(weight.sum())
        p = weight / total if total > 0 else None
        centres.append(x[int(rng.choice(x.shape[0], p=p))])
    return np.asarray(np.stack(centres), dtype=np.float32)


def cluster(
    vectors: npt.ArrayLike,
    *,
    n_clusters: int | None = None,
    init: npt.ArrayLike | None = None,
    k_min: int = 5,
    k_max: int = 25,
    sample_size: int = 3000,
    seed: int = 0,
    threads: int | None = None,
) -> Clustering:
    """Cluster vectors with k-means on unit vectors (cosine geometry).

    Args:
        vectors: ``(n, dim)`` embeddings.
        n_clusters: The number of clusters; ``None`` picks it with :func:`choose_k`.
        init: Starting centres in priority order (a refit passes the current
            themes' centroids, largest first); missing ones are drawn k-means++
            style, surplus ones dropped farthest-first.
        k_min: Passed to :func:`choose_k`.
        k_max: Passed to :func:`choose_k`.
        sample_size: Passed to :func:`choose_k`.
        seed: Random seed.
        threads: CPU threads for k-means.

    Returns:
        Labels, unit-length centroids and the silhouette scores tried.

    Raises:
        ValueError: Fewer vectors than clusters.
    """
    from sklearn.cluster import KMeans

    x = normalize(vectors)
    n = x.shape[0]
    with _limits(threads):
        scores: dict[int, float] = {}
        if n_clusters is None:
            n_clusters, scores = choose_k(
                x, k_min=k_min, k_max=k_max, sample_size=sample_size, seed=seed
            )
        if n < n_clusters:
            raise ValueError(f"cannot make {n_clusters} clusters of {n} vectors")
        if init is not None and len(np.atleast_2d(np.asarray(init))) > 0:
            start = _seeded_init(x, np.asarray(init, dtype=np.float32), n_clusters, seed)
            km = KMeans(n_clusters=n_clusters, init=start, n_init=1, random_state=seed)
        else:
            km = KMeans(n_clusters=n_clusters, n_init=3, random_state=seed)
        labels = km.fit_predict(x).astype(np.int64)
    centroids = np.zeros((n_clusters, x.shape[1]), dtype=np.float32)
    for j in range(n_clusters):
        rows = x[labels == j]
        centroids[j] = rows.mean(axis=0) if len(rows) else km.cluster_centers_[j]
    return Clustering(labels=labels, centroids=normalize(centroids), silhouette=scores)


def assign(
    vectors: npt.ArrayLike, centroids: npt.ArrayLike, *, threshold: float = 0.3
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The nearest centroid of each vector by cosine, or -1 below ``threshold``.

    Returns:
        ``(index of the centroid or -1, cosine similarity to the nearest centroid)``.
    """
    x = normalize(vectors)
    c = np.atleast_2d(np.asarray(centroids, dtype=np.float32))
    if x.shape[0] == 0 or c.size == 0:
        n = x.shape[0]
        return np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.float32)
    sims = x @ normalize(c).T
    best = sims.argmax(axis=1).astype(np.int64)
    top = sims[np.arange(len(best)), best].astype(np.float32)
    best[top < threshold] = -1
    return best, top


def clean_text(text: str) -> str:
    """A post made ready for term counting: no @handles, URLs, numbers, entities, punctuation."""
    s = html.unescape(str(text or ""))
    s = _URL.sub(" ", s)
    s = _HANDLE.sub(" ", s)
    s = _APOSTROPHE.sub("", s)
    s = _NUMBERISH.sub(" ", s)
    s = _PUNCT.sub(" ", s)
    return _WS.sub(" ", s).strip()


def top_terms(
    texts: Sequence[str],
    labels: Sequence[int] | npt.NDArray[np.int64],
    *,
    n_terms: int = 8,
    stop_words: Iterable[str] = (),
    min_count: int = 2,
) -> dict[int, list[tuple[str, float]]]:
    """The top terms of each class by class-based TF-IDF (BERTopic's c-TF-IDF).

    All texts of a class form one document. A term's weight in a class is its
    frequency there (normalised by the class's length) times
    ``log(1 + A / f)``, with ``A`` the average number of words per class and
    ``f`` the term's frequency over all classes. Unigrams and bigrams are
    counted; a term seen fewer than ``min_count`` times in all is ignored.

    Args:
        texts: The texts, verbatim (they are cleaned with :func:`clean_text`).
        labels: Each text's class; ``-1`` (unthemed) is ignored.
        n_terms: Terms kept per class.
        stop_words: Words to leave out besides English stop words and
            :data:`SOCIAL_STOP_WORDS`.
        min_count: Minimum total count of a term.

    Returns:
        ``{class: [(term, weight), ...]}`` best first; a class whose texts have
        no countable word gets an empty list.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    labs = np.asarray(labels, dtype=np.int64)
    if len(labs) != len(texts):
        raise ValueError("texts and labels differ in length")
    classes = sorted({int(c) for c in labs.tolist() if c >= 0})
    if not classes:
        return {}
    docs = [" ".join(clean_text(texts[i]) for i in np.flatnonzero(labs == c)) for c in classes]
    stops = set(ENGLISH_STOP_WORDS) | SOCIAL_STOP_WORDS | {w.lower() for w in stop_words}
    vec = CountVectorizer(
        stop_words=sorted(stops), ngram_range=(1, 2), token_pattern=_TOKEN, lowercase=True
    )
    try:
        counts = vec.fit_transform(docs).toarray().astype(np.float64)
    except ValueError:  # no word left at all
        return {c: [] for c in classes}
    vocab = vec.get_feature_names_out()
    total = counts.sum(axis=0)
    keep = total >= min_count
    if not keep.any():
        keep = total > 0
    counts, vocab, total = counts[:, keep], vocab[keep], total[keep]
    row = counts.sum(axis=1, keepdims=True)
    tf = counts / np.where(row > 0, row, 1.0)
    avg_words = float(counts.sum()) / len(classes)
    idf = np.log(1.0 + avg_words / total)
    weights = tf * idf
    out: dict[int, list[tuple[str, float]]] = {}
    for r, c in enumerate(classes):
        order = np.argsort(-weights[r], kind="stable")
        picked: list[tuple[str, float]] = []
        for j in order:
            if weights[r, j] <= 0 or len(picked) >= n_terms:
                break
            term = str(vocab[j])
            # A unigram already inside a picked bigram (or the reverse) adds nothing.
            if any(term in p.split() or p in term.split() for p, _ in picked):
                continue
            picked.append((term, round(float(weights[r, j]), 6)))
        out[c] = picked
    return out


def label_for(terms: Sequence[tuple[str, float]], *, n: int = 3) -> str:
    """A theme's automatic label: its first ``n`` terms, or ``(no terms)``."""
    return ", ".join(t for t, _ in terms[:n]) or "(no terms)"


def representatives(
    vectors: npt.ArrayLike,
    labels: Sequence[int] | npt.NDArray[np.int64],
    centroids: npt.ArrayLike,
    *,
    n: int = 3,
) -> dict[int, list[int]]:
    """The row indices of each cluster's members nearest its centroid, nearest first."""
    x = normalize(vectors)
    c = normalize(centroids)
    labs = np.asarray(labels, dtype=np.int64)
    out: dict[int, list[int]] = {}
    for j in range(c.shape[0]):
        rows = np.flatnonzero(labs == j)
        sims = x[rows] @ c[j]
        out[j] = [int(rows[i]) for i in np.argsort(-sims, kind="stable")[:n]]
    return out


# --------------------------------------------------------------------------- refit mapping


@dataclass(frozen=True, slots=True)
class Transition:
    """How a refit's new clusters relate to the old themes (:func:`match`).

    Attributes:
        ids: For each new cluster index, the old theme id it continues, or
            ``None`` for a new theme (split-off parts and new clusters).
        kinds: For each new cluster: ``keep``, ``merge`` (it continues the
            survivor of a merge), ``split`` (a part split off an old theme),
            ``new``, or ``pinned`` (it is absorbed by a pinned theme, which is
            kept as it is).
        merges: ``(survivor id, merged ids)`` per merge.
        splits: ``(old id, new cluster indices split off it)`` per split.
        retired: Old themes that nothing continues.
        frozen: Pinned old themes (kept unchanged, whatever the data says).
        overlap: ``{old id: {new index: shared members}}`` (non-zero only).
    """

    ids: dict[int, int | None]
    kinds: dict[int, str]
    merges: list[tuple[int, tuple[int, ...]]]
    splits: list[tuple[int, tuple[int, ...]]]
    retired: tuple[int, ...]
    frozen: tuple[int, ...]
    overlap: dict[int, dict[int, int]]

    def split_parent(self, new_index: int) -> int | None:
        """The old theme a split-off cluster came from, if it is one."""
        for old, parts in self.splits:
            if new_index in parts:
                return old
        return None


def match(
    old: Mapping[int, Collection[int]],
    new: Mapping[int, Collection[int]],
    *,
    pinned: Collection[int] = (),
    min_share: float = 0.2,
) -> Transition:
    """Map new clusters to old themes by shared members.

    Each old theme's *primary* destination is the new cluster that got most of
    its members, if that is at least ``min_share`` of them. Then, per new
    cluster: one old theme whose primary it is -> keep that id; several ->
    merge (the old theme sharing most members survives; a pinned one always
    survives, and several pinned ones all stay); none -> a split-off part of
    the old theme that shares most members with it, if that is at least
    ``min_share`` of the old theme (and the old theme is not pinned), else a
    new theme. An old theme with no primary destination is retired, unless pinned.

    Args:
        old: Old theme id -> its members (mention ids).
        new: New cluster index -> its members (mention ids).
        pinned: Old theme ids that must be kept unchanged.
        min_share: See above.

    Returns:
        The :class:`Transition`.
    """
    frozen = {int(i) for i in pinned if i in old}
    new_sets = {int(j): set(m) for j, m in new.items()}
    overlap: dict[int, dict[int, int]] = {}
    primary: dict[int, int] = {}
    for i, members in old.items():
        mem = set(members)
        shares = {j: len(mem & s) for j, s in new_sets.items()}
        shares = {j: n for j, n in shares.items() if n > 0}
        overlap[int(i)] = shares
        if not shares:
            continue
        best = min(shares, key=lambda j: (-shares[j], j))
        if shares[best] >= min_share * max(len(mem), 1):
            primary[int(i)] = best
    sources: dict[int, list[int]] = {}
    for i, j in primary.items():
        sources.setdefault(j, []).append(i)
    ids: dict[int, int | None] = {}
    kinds: dict[int, str] = {}
    merges: list[tuple[int, tuple[int, ...]]] = []
    split_parts: dict[int, list[int]] = {}
    for j in sorted(new_sets):
        src = sorted(sources.get(j, []), key=lambda i: (-overlap[i][j], i))
        if len(src) == 1:
            ids[j] = src[0]
            kinds[j] = "pinned" if src[0] in frozen else "keep"
        elif len(src) > 1:
            pins = [i for i in src if i in frozen]
            survivor = pins[0] if pins else src[0]
            merged = tuple(i for i in src if i not in frozen and i != survivor)
            ids[j] = survivor
            kinds[j] = "pinned" if pins else "merge"
            if merged:
                merges.append((survivor, merged))
        else:
            ids[j] = None
            parents = [i for i in overlap if overlap[i].get(j, 0) > 0]
            parent = min(parents, key=lambda i: (-overlap[i][j], i)) if parents else None
            if (
                parent is not None
                and parent not in frozen
                and parent in primary
                and overlap[parent][j] >= min_share * max(len(set(old[parent])), 1)
            ):
                kinds[j] = "split"
                split_parts.setdefault(parent, []).append(j)
            else:
                kinds[j] = "new"
    retired = tuple(sorted(int(i) for i in old if int(i) not in primary and int(i) not in frozen))
    return Transition(
        ids=ids,
        kinds=kinds,
        merges=merges,
        splits=[(i, tuple(parts)) for i, parts in sorted(split_parts.items())],
        retired=retired,
        frozen=tuple(sorted(frozen)),
        overlap=overlap,
    )


# --------------------------------------------------------------------------- the database side


@dataclass(slots=True)
class RefitReport:
    """What a fit or refit did."""

    fit_id: str
    mentions: int
    k: int
    kept: list[int] = field(default_factory=list)
    new: list[int] = field(default_factory=list)
    split: list[tuple[int, list[int]]] = field(default_factory=list)
    merged: list[tuple[int, list[int]]] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)
    frozen: list[int] = field(default_factory=list)
    unthemed: int = 0
    silhouette: dict[int, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (for ``--json`` and the audit log)."""
        return {
            "fit_id": self.fit_id,
            "mentions": self.mentions,
            "k": self.k,
            "kept": self.kept,
            "new": self.new,
            "split": [[i, parts] for i, parts in self.split],
            "merged": [[i, parts] for i, parts in self.merged],
            "retired": self.retired,
            "frozen": self.frozen,
            "unthemed": self.unthemed,
            "silhouette": {str(k): round(v, 4) for k, v in self.silhouette.items()},
        }


def new_fit_id() -> str:
    """A fresh, sortable fit id, e.g. ``fit-20240501T090000-3f9a1c``."""
    from datetime import UTC, datetime

    return f"fit-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def _results(
    mention_ids: Sequence[int],
    index: npt.NDArray[np.int64],
    sims: npt.NDArray[np.float32],
    theme_ids: Sequence[int],
    version: str,
) -> list[store.EnrichmentResult]:
    stage = theme_store.THEME_STAGE
    out = []
    for mid, i, s in zip(mention_ids, index.tolist(), sims.tolist(), strict=True):
        if i < 0:
            out.append(
                store.EnrichmentResult(
                    mention_id=int(mid),
                    stage=stage,
                    label=None,
                    score=round(float(s), 6),
                    model_name=MODEL_NAME,
                    model_version=version,
                    data={"reason": "below threshold"},
                )
            )
        else:
            out.append(
                store.EnrichmentResult(
                    mention_id=int(mid),
                    stage=stage,
                    label=str(theme_ids[i]),
                    score=round(float(s), 6),
                    model_name=MODEL_NAME,
                    model_version=version,
                    data={},
                )
            )
    return out


def _relabel(
    conn: Connection,
    options: ThemeOptions,
    mention_ids: Sequence[int],
    index: npt.NDArray[np.int64],
    theme_ids: Sequence[int],
    only: Collection[int],
    fit_id: str | None,
    texts_by_id: Mapping[int, str] | None = None,
) -> None:
    """Recompute the terms and labels of the themes in ``only`` from their assigned texts."""
    if texts_by_id is None:
        themed = [m for m, i in zip(mention_ids, index.tolist(), strict=True) if i >= 0]
        texts_by_id = theme_store.mention_texts(conn, themed)
    texts = [texts_by_id.get(m, "") for m in mention_ids]
    terms = top_terms(texts, index, n_terms=options.n_terms, stop_words=options.stop_words)
    for pos, tid in enumerate(theme_ids):
        if tid not in only:
            continue
        t = terms.get(pos, [])
        changes: dict[str, Any] = {"terms": t, "label": label_for(t)}
        if fit_id is not None:
            changes["fit_id"] = fit_id
        theme_store.update_theme(conn, tid, changes)


def _assign_in(
    conn: Connection, options: ThemeOptions, version: str
) -> tuple[list[int], npt.NDArray[np.int64], list[int], int]:
    """Re-assign every embedded mention to the active themes; rewrite the enrichments."""
    themes = [t for t in theme_store.load_themes(conn) if t.centroid is not None]
    mention_ids, x = theme_store.embedding_matrix(conn)
    theme_ids = [t.id for t in themes]
    if themes:
        cents = np.stack([t.centroid for t in themes])
        index, sims = assign(x, cents, threshold=options.threshold)
    else:
        index = np.full(len(mention_ids), -1, dtype=np.int64)
        sims = np.zeros(len(mention_ids), dtype=np.float32)
    theme_store.replace_assignments(conn, _results(mention_ids, index, sims, theme_ids, version))
    counts = np.bincount(index[index >= 0], minlength=len(theme_ids)) if theme_ids else []
    for pos, tid in enumerate(theme_ids):
        theme_store.update_theme(conn, tid, {"size": int(counts[pos])})
    return mention_ids, index, theme_ids, int((index < 0).sum())


def assign_all(engine: Engine, options: ThemeOptions | None = None) -> int:
    """Re-assign every embedded mention to the nearest active theme (one transaction).

    Returns:
        How many mentions were assigned (themed or not).
    """
    options = options or ThemeOptions()
    with engine.begin() as conn:
        version = theme_store.latest_fit_id(conn) or "unfitted"
        ids, _, _, _ = _assign_in(conn, options, version)
    return len(ids)


def refit(
    engine: Engine, options: ThemeOptions | None = None, *, actor: str = "system"
) -> RefitReport:
    """Fit themes on every stored embedding, keeping the ids of themes that continue.

    The first fit creates themes (their number chosen by silhouette unless
    ``options.n_themes`` is set); later ones keep the current number of themes
    unless ``options.n_themes`` says otherwise, map the new clusters to the
    current themes (:func:`match`) and record keeps, splits, merges, new and
    retired themes as theme events. Every mention is then re-assigned. All of
    it is one transaction.

    Args:
        engine: The database (migrated).
        options: How to fit; defaults apply where ``None``.
        actor: Who asked for it (theme events and audit log).

    Returns:
        What changed.

    Raises:
        NotEnoughMentionsError: Fewer than ``options.min_mentions`` embedded mentions.
    """
    options = options or ThemeOptions()
    with engine.connect() as conn:
        mention_ids, x = theme_store.embedding_matrix(conn)
        old_themes = theme_store.load_themes(conn)
        old_members = theme_store.theme_members(conn)
        texts_by_id = theme_store.mention_texts(conn, mention_ids)
    n = len(mention_ids)
    if n < options.min_mentions:
        raise NotEnoughMentionsError(
            f"themes need at least {options.min_mentions} mentions with embeddings, "
            f"there are {n}; run `listenwell enrich` after importing more"
        )
    fit_id = new_fit_id()
    first = not old_themes
    k_cap = max(2, n // options.min_theme_size)
    # Start k-means where the current themes are (pinned ones too, so that their
    # mentions do not pull another cluster over), largest first.
    seeds = sorted(
        (t for t in old_themes if t.centroid is not None),
        key=lambda t: (-len(old_members.get(t.id, ())), t.id),
    )
    init = np.stack([t.centroid for t in seeds]) if seeds else None
    k = options.n_themes
    silhouette: dict[int, float] = {}
    if k is None and seeds:
        # A refit keeps the number of themes unless asked for another (``--count``):
        # choosing k again would renumber the map for no reason the user asked for.
        k = len(seeds)
    if k is None:
        k, silhouette = choose_k(
            x,
            k_min=min(options.k_min, k_cap),
            k_max=min(options.k_max, k_cap),
            sample_size=options.sample_size,
            seed=options.seed,
        )
    k = min(k, n)
    clustering = cluster(x, n_clusters=k, init=init, seed=options.seed, threads=options.threads)
    new_members = {
        j: [mention_ids[r] for r in rows.tolist()] for j, rows in clustering.members().items()
    }
    active_ids = {t.id for t in old_themes}
    transition = match(
        {i: m for i, m in old_members.items() if i in active_ids}
        | {t.id: set() for t in old_themes if t.id not in old_members},
        new_members,
        pinned=[t.id for t in old_themes if t.pinned],
        min_share=options.min_share,
    )
    by_id = {t.id: t for t in old_themes}
    report = RefitReport(fit_id=fit_id, mentions=n, k=clustering.k, silhouette=silhouette)
    with engine.begin() as conn:
        continued: dict[int, int] = {}  # new cluster index -> theme id
        for j in range(clustering.k):
            tid = transition.ids[j]
            kind = transition.kinds[j]
            centroid = clustering.centroids[j]
            if tid is not None and kind == "pinned":
                continued[j] = tid
                continue
            if tid is not None:
                theme_store.update_theme(conn, tid, {"centroid": centroid, "fit_id": fit_id})
                continued[j] = tid
                if kind == "keep":
                    report.kept.append(tid)
                continue
            origin = "split" if kind == "split" else "cluster"
            label = "(new theme)"
            new_id = theme_store.insert_theme(
                conn,
                theme_store.NewTheme(label=label, centroid=centroid, origin=origin, fit_id=fit_id),
            )
            continued[j] = new_id
            if kind == "new":
                report.new.append(new_id)
        for old, parts in transition.splits:
            children = [continued[j] for j in parts]
            report.split.append((old, children))
            theme_store.record_theme_event(
                conn,
                "split",
                actor=actor,
                fit_id=fit_id,
                from_ids=[old],
                to_ids=[old, *children],
                detail={"shared": {str(continued[j]): transition.overlap[old][j] for j in parts}},
            )
        for survivor, merged in transition.merges:
            for i in merged:
                theme_store.update_theme(conn, i, {"status": "merged", "merged_into": survivor})
            report.merged.append((survivor, list(merged)))
            theme_store.record_theme_event(
                conn,
                "merge",
                actor=actor,
                fit_id=fit_id,
                from_ids=[survivor, *merged],
                to_ids=[survivor],
                detail={"by": "refit"},
            )
        for i in transition.retired:
            theme_store.update_theme(conn, i, {"status": "retired"})
            report.retired.append(i)
            theme_store.record_theme_event(
                conn, "retire", actor=actor, fit_id=fit_id, from_ids=[i], to_ids=[]
            )
        report.frozen = list(transition.frozen)
        if report.new and not first:
            theme_store.record_theme_event(
                conn, "new", actor=actor, fit_id=fit_id, from_ids=[], to_ids=report.new
            )
        # Assign with the final centroids (pinned ones unchanged), then label from the members.
        ids, index, theme_ids, unthemed = _assign_in(conn, options, fit_id)
        report.unthemed = unthemed
        movable_ids = {tid for tid in theme_ids if not by_id.get(tid) or not by_id[tid].pinned}
        index_arr = np.asarray(index, dtype=np.int64)
        _relabel(conn, options, ids, index_arr, theme_ids, movable_ids, fit_id, texts_by_id)
        summary = report.as_dict()
        theme_store.record_theme_event(
            conn,
            "fit" if first else "refit",
            actor=actor,
            fit_id=fit_id,
            from_ids=sorted(active_ids),
            to_ids=theme_ids,
            detail={
                **{k: v for k, v in summary.items() if k != "fit_id"},
                "mapping": {str(continued[j]): transition.kinds[j] for j in continued},
            },
        )
        store.record_audit(
            conn, actor, "themes.fit" if first else "themes.refit", "themes", fit_id, summary
        )
    return report


# --------------------------------------------------------------------------- user actions


def _active(conn: Connection, theme_id: int) -> theme_store.Theme:
    try:
        theme = theme_store.get_theme(conn, theme_id)
    except store.NotFoundError as exc:
        raise ThemeError(str(exc)) from None
    if theme.status == "merged":
        raise ThemeError(f"theme {theme_id} was merged into theme {theme.merged_into}")
    if theme.status != "active":
        raise ThemeError(f"theme {theme_id} is {theme.status}")
    return theme


def name_theme(engine: Engine, theme_id: int, name: str, *, actor: str) -> None:
    """Give a theme a name (it wins over the automatic label everywhere).

    Raises:
        ThemeError: No such active theme, or an empty or over-long name.
    """
    name = " ".join(str(name).split())
    if not name:
        raise ThemeError("a theme name cannot be empty")
    if len(name) > 200:
        raise ThemeError("a theme name has at most 200 characters")
    with engine.begin() as conn:
        theme = _active(conn, theme_id)
        theme_store.update_theme(conn, theme.id, {"name": name})
        detail = {"old": theme.name, "new": name}
        theme_store.record_theme_event(
            conn, "name", actor=actor, from_ids=[theme.id], to_ids=[theme.id], detail=detail
        )
        store.record_audit(conn, actor, "theme.name", "theme", str(theme.id), detail)


def pin_theme(engine: Engine, theme_id: int, *, pinned: bool = True, actor: str) -> None:
    """Pin a theme (a refit then leaves it exactly as it is) or unpin it.

    Raises:
        ThemeError: No such active theme.
    """
    kind = "pin" if pinned else "unpin"
    with engine.begin() as conn:
        theme = _active(conn, theme_id)
        theme_store.update_theme(conn, theme.id, {"pinned": pinned})
        theme_store.record_theme_event(
            conn, kind, actor=actor, from_ids=[theme.id], to_ids=[theme.id]
        )
        store.record_audit(
            conn, actor, f"theme.{kind}", "theme", str(theme.id), {"was": theme.pinned}
        )


def merge_themes(
    engine: Engine,
    theme_ids: Iterable[int],
    into: int,
    *,
    actor: str,
    options: ThemeOptions | None = None,
) -> None:
    """Merge themes into a survivor, which keeps its id, name and pin.

    The survivor's centroid becomes the member-weighted mean of all their
    centroids; the merged themes get status ``merged`` and ``merged_into``;
    every mention is re-assigned and the survivor's terms are recomputed.

    Raises:
        ThemeError: A theme is unknown or not active, or nothing to merge.
    """
    options = options or ThemeOptions()
    ids = sorted({int(i) for i in theme_ids} - {int(into)})
    if not ids:
        raise ThemeError("name at least one theme to merge besides the survivor")
    with engine.begin() as conn:
        survivor = _active(conn, into)
        merged = [_active(conn, i) for i in ids]
        sizes = theme_store.theme_members(conn)
        parts = [t for t in [survivor, *merged] if t.centroid is not None]
        weights = np.array([max(len(sizes.get(t.id, ())), 1) for t in parts], dtype=np.float32)
        centroid = normalize(
            (np.stack([t.centroid for t in parts]) * weights[:, None]).sum(axis=0)
        )[0]
        theme_store.update_theme(conn, survivor.id, {"centroid": centroid})
        for t in merged:
            theme_store.update_theme(conn, t.id, {"status": "merged", "merged_into": survivor.id})
        theme_store.record_theme_event(
            conn,
            "merge",
            actor=actor,
            from_ids=[survivor.id, *ids],
            to_ids=[survivor.id],
            detail={"by": "user"},
        )
        version = theme_store.latest_fit_id(conn) or "unfitted"
        mids, index, tids, _ = _assign_in(conn, options, version)
        _relabel(conn, options, mids, index, tids, {survivor.id}, None)
        store.record_audit(conn, actor, "theme.merge", "theme", str(survivor.id), {"merged": ids})


def define_theme(
    engine: Engine,
    name: str,
    example_ids: Iterable[int],
    *,
    actor: str,
    options: ThemeOptions | None = None,
) -> int:
    """Define a theme from example mentions; it is pinned, so refits keep it as defined.

    Its centroid is the mean of the examples' stored embeddings. Every mention
    is then re-assigned (the new theme takes the mentions nearer to it than to
    any other theme, above the threshold) and its terms are computed.

    Returns:
        The new theme's id.

    Raises:
        ThemeError: No examples, an unknown mention, or one without a stored embedding.
    """
    options = options or ThemeOptions()
    examples = list(dict.fromkeys(int(i) for i in example_ids))
    name = " ".join(str(name).split())
    if not name:
        raise ThemeError("a theme name cannot be empty")
    if len(name) > 200:
        raise ThemeError("a theme name has at most 200 characters")
    if not examples:
        raise ThemeError("give at least one example mention")
    with engine.begin() as conn:
        known = theme_store.mention_texts(conn, examples)
        missing = [i for i in examples if i not in known]
        if missing:
            raise ThemeError(f"no mention with id {', '.join(map(str, missing))}")
        found, x = theme_store.embedding_matrix(conn, examples)
        lacking = [i for i in examples if i not in set(found)]
        if lacking:
            raise ThemeError(
                f"mention {', '.join(map(str, lacking))} has no stored embedding yet; "
                "run `listenwell enrich` first"
            )
        centroid = normalize(normalize(x).mean(axis=0))[0]
        terms = top_terms(
            [known[i] for i in examples],
            [0] * len(examples),
            n_terms=options.n_terms,
            stop_words=options.stop_words,
            min_count=1,
        ).get(0, [])
        new_id = theme_store.insert_theme(
            conn,
            theme_store.NewTheme(
                label=label_for(terms) if terms else name,
                centroid=centroid,
                terms=terms,
                origin="user",
                name=name,
                pinned=True,
                examples=examples,
            ),
        )
        theme_store.record_theme_event(
            conn, "define", actor=actor, to_ids=[new_id], detail={"examples": examples}
        )
        version = theme_store.latest_fit_id(conn) or "unfitted"
        mids, index, tids, _ = _assign_in(conn, options, version)
        if (index == tids.index(new_id)).sum() >= 2:
            _relabel(conn, options, mids, index, tids, {new_id}, None)
        store.record_audit(
            conn, actor, "theme.define", "theme", str(new_id), {"name": name, "examples": examples}
        )
    return new_id


# --------------------------------------------------------------------------- the stage


class ThemeAssigner:
    """The ``themes`` stage: each mention's nearest theme (registry ``themes.kmeans``).

    ``label`` is the theme id as text, ``score`` the cosine similarity to its
    centroid. Below ``options.threshold`` the label is ``None`` (unthemed) and
    ``data.reason`` is ``below threshold``; before any themes exist the label
    is ``None`` and ``data.reason`` says why. ``model_version`` is the id of the
    fit the themes come from.

    Args:
        options: Fitting and assignment options.
        threads: CPU threads for k-means (overrides ``options.threads``).
    """

    name = "themes"
    model_name = MODEL_NAME
    needs_embeddings = True
    off = False
    phase = 1

    def __init__(self, options: ThemeOptions | None = None, *, threads: int | None = None) -> None:
        options = options or ThemeOptions()
        if threads is not None:
            from dataclasses import replace

            options = replace(options, threads=threads)
        self.options = options
        self.model_version = "unfitted"
        self.theme_ids: list[int] = []
        self.centroids: npt.NDArray[np.float32] = np.zeros((0, 0), dtype=np.float32)
        self.reason = "themes are not loaded (prepare was not called)"

    def load(self, theme_ids: Sequence[int], centroids: npt.ArrayLike, version: str) -> None:
        """Use these themes (ids and centroids) for :meth:`run`."""
        self.theme_ids = [int(i) for i in theme_ids]
        self.centroids = normalize(centroids) if len(self.theme_ids) else self.centroids
        self.model_version = version
        self.reason = "" if self.theme_ids else "no active themes"

    def prepare(self, engine: Engine) -> None:
        """Load the active themes, fitting them first if there are none yet and enough mentions.

        A first fit also assigns every embedded mention, so mentions that
        were left unthemed while there were too few are labelled now.
        """
        themes = [t for t in theme_store.load_themes(engine) if t.centroid is not None]
        if not themes:
            n = store.count_embeddings(engine)
            if n < self.options.min_mentions:
                self.load([], [], "unfitted")
                self.reason = f"too few mentions to fit themes ({n} of {self.options.min_mentions})"
                return
            refit(engine, self.options)
            themes = [t for t in theme_store.load_themes(engine) if t.centroid is not None]
        version = theme_store.latest_fit_id(engine) or "unfitted"
        if themes:
            self.load([t.id for t in themes], np.stack([t.centroid for t in themes]), version)
        else:
            self.load([], [], version)

    def run(
        self, texts: Sequence[str], embeddings: npt.NDArray[np.float32] | None = None
    ) -> list[StageResult]:
        """Assign each text (by its embedding) to the nearest theme."""
        if embeddings is None:
            raise NlpError("the themes stage needs the batch's embeddings")
        if len(embeddings) != len(texts):
            raise NlpError(f"got {len(embeddings)} embeddings for {len(texts)} texts")
        if not self.theme_ids:
            return [StageResult(label=None, data={"reason": self.reason}) for _ in texts]
        index, sims = assign(embeddings, self.centroids, threshold=self.options.threshold)
        out = []
        for i, s in zip(index.tolist(), sims.tolist(), strict=True):
            if i < 0:
                out.append(
                    StageResult(label=None, score=round(s, 6), data={"reason": "below threshold"})
                )
            else:
                out.append(StageResult(label=str(self.theme_ids[i]), score=round(s, 6)))
        return out

    def __repr__(self) -> str:
        return f"ThemeAssigner({len(self.theme_ids)} themes, {self.model_version})"
