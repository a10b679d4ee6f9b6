"""Intent: few-shot prototypes over the MiniLM embeddings plus transparent rules.

Registry name ``intent.prototypes``; results are stored under the stage name
``intent`` with one of :data:`LABELS`: ``complaint``, ``question``,
``praise``, ``feature_request``, ``other`` (definitions in
``bench/intent/GUIDELINES.md``).

How a text is scored (:class:`PrototypeIntent`):

1. **Prototypes.** :data:`SEEDS` holds a few short example phrases per class,
   written for this module (never copied from the evaluation sample; see the
   limits in ``bench/intent/GUIDELINES.md``). They are
   embedded once, when the stage is created, with the packaged MiniLM. A
   text's similarity to a class is the mean of its ``top_k`` highest cosine
   similarities to that class's phrases.
2. **Rules.** Each rule in :data:`RULES` is a regular expression tied to one
   class ("please add" to ``feature_request``, a question mark to
   ``question``, "thank you" to ``praise``, "still waiting" to ``complaint``).
   A rule that fires adds its weight to its class (``help_request`` and
   ``positive_words`` got weight 0 on dev: they are still reported, and used
   by the rules-only baseline :func:`rules_label`).
3. **Decision.** ``score[c] = similarity[c] + sum(weights of c's fired rules) + bias[c]``;
   the label is the best class, and the probabilities are
   ``softmax(score / temperature)``.

``top_k``, the rule weights, the class biases and the temperature
(:data:`DEFAULT_PARAMS`) were chosen by ``bench/intent/tune_intent.py`` on the
**dev** split of ``bench/intent/labelled.csv`` only; ``bench/intent/eval_intent.py``
reports the figures on its **test** split.

The result's ``score`` is the top probability: calibrated on dev by the
temperature (a "calibrated-ish" confidence, not a guarantee). ``data`` holds
``scores`` (all five probabilities) and ``rules`` (the names of the rules that
fired, in :data:`RULES` order).

Change :data:`SEEDS`, :data:`RULES` or :data:`DEFAULT_PARAMS` and bump
:data:`MODEL_VERSION`: stored results record which version made them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .base import NlpError, StageResult
from .embeddings import Embedder

__all__ = [
    "DEFAULT_PARAMS",
    "LABELS",
    "MODEL_NAME",
    "MODEL_VERSION",
    "RULES",
    "SEEDS",
    "IntentParams",
    "PrototypeIntent",
    "Rule",
    "fired_rules",
    "rule_text",
    "rules_label",
]

LABELS = ("complaint", "question", "praise", "feature_request", "other")
MODEL_NAME = "listenwell-intent-prototypes"
MODEL_VERSION = "0.1.0"

SEEDS: dict[str, tuple[str, ...]] = {
    "complaint": (
        "my flight was delayed for hours and nobody told us anything",
        "worst customer service I have ever experienced",
        "I have been on hold for an hour and still no answer",
        "you lost my luggage and nobody is helping",
        "the app keeps crashing after the latest update",
        "my order arrived broken",
        "it stopped working after two weeks",
        "still waiting for my refund",
        "this is unacceptable, I am very disappointed",
        "the voice assistant never understands my requests",
        "my package never arrived",
        "you charged me twice and won't fix it",
        "the staff at the counter was rude to me",
        "since the update my phone is really slow",
        "the sound quality is terrible",
        "you cancelled my flight without any notice",
        "never flying with you again",
        "I want my money back",
        "the website is broken and I can't log in",
        "no one answers the phone",
    ),
    "question": (
        "do you fly to Mexico City?",
        "how do I change my delivery address?",
        "what time does the store open on Sunday?",
        "can I bring my dog on the plane?",
        "is there a way to connect it to my TV?",
        "how do I reset my password?",
        "does this work with other smart plugs?",
        "when will the new schedule be released?",
        "where can I find my confirmation number?",
        "what is the baggage allowance for international flights?",
        "is it possible to upgrade my ticket?",
        "which plan includes international calls?",
        "who should I contact about my account?",
        "what is the best way to earn points?",
        "can you tell me if the evening train is running today?",
        "could you help me with a booking?",
    ),
    "praise": (
        "thank you so much for the great service",
        "I love it, best purchase ever",
        "the crew was amazing and very friendly",
        "works great and was easy to set up",
        "great sound for such a small speaker",
        "thanks for fixing my problem so quickly",
        "absolutely love this product",
        "you guys are the best airline",
        "excellent customer support, very helpful",
        "my kids love it",
        "highly recommend it to everyone",
        "the flight was smooth and on time, thanks",
        "so happy with this, it does everything I need",
        "shout out to the agent who helped me today",
        "amazing experience, will fly again",
        "very easy to use and lots of fun",
    ),
    "feature_request": (
        "please add support for more music services",
        "I wish it came in a waterproof version",
        "it would be nice if the app had a widget for the home screen",
        "you should add a direct flight from Denver to Lisbon",
        "can you add an option to export my data?",
        "please bring back the old menu",
        "would love to see a dark mode in the app",
        "it needs a headphone jack",
        "I would like to be able to set different alarms for weekdays",
        "you should offer free wifi on all flights",
        "my only suggestion is a longer power cord",
        "hope you add more routes from this airport",
        "it would be great if it worked with my calendar",
        "please let us pick the color of the light ring",
        "please add a vegetarian meal option",
        "if only it had a screen",
    ),
    "other": (
        "just landed in Chicago",
        "heading to the airport for my trip tomorrow",
        "it's okay I guess",
        "sent you a direct message with my details",
        "my confirmation number is in the message",
        "watching the game tonight",
        "bought this as a gift for my mother",
        "check out this picture from my window seat",
        "it does what it says",
        "happy friday everyone",
        "read the article about the merger",
        "the version is 11.2 on an iPhone 6",
        "my family is going to Florida next month",
        "new post on my blog",
    ),
}
"""Few-shot example phrases per class, written for this module (never copied from test data)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A named regular expression that votes for one class.

    Attributes:
        name: Stored in ``data["rules"]`` when the rule fires.
        label: The class it votes for.
        pattern: Searched in :func:`rule_text` of the post (lower case, no URLs or @handles).
    """

    name: str
    label: str
    pattern: re.Pattern[str]

    def fires(self, text: str) -> bool:
        """Whether the rule matches an already normalised text (see :func:`rule_text`)."""
        return self.pattern.search(text) is not None


def _any(*alternatives: str, start: bool = False) -> re.Pattern[str]:
    """One pattern matching any alternative as whole words (at the start with ``start``)."""
    body = "|".join(alternatives)
    # (?![\w']) rather than \b, so that "can't" does not count as a question's "can".
    return re.compile(rf"^(?:{body})(?![\w'])" if start else rf"\b(?:{body})(?![\w'])")


RULES: tuple[Rule, ...] = (
    Rule(
        "feature_wish",
        "feature_request",
        _any(
            r"please (?:add|bring|make|consider|let us|allow)",
            r"(?:can|could|would) you (?:please )?(?:add|make|offer|bring|start)",
            r"you (?:should|need to|guys should) (?:add|offer|have|make|consider|bring|fly|start"
            r"|allow|put)",
            r"would be (?:nice|great|awesome|cool|better|helpful) if",
            r"would love (?:to see|it if|if|a|an)",
            r"i wish (?:it|you|they|there|alexa|amazon|the)",
            r"wish (?:it|you|they)(?:'d| had| would| could| was| were| did| flew| offered| came)",
            r"bring back",
            r"i(?:'d| would) (?:like|love) (?:to see|to be able|it if|if)",
            r"would like to see",
            r"should (?:be able to|have an option)",
            r"needs? (?:to have|an option|a way)",
            r"option to",
            r"ability to",
            r"suggestions?",
            r"if only (?:it|you|they|there)",
            r"add (?:support|an option|the ability)",
        ),
    ),
    Rule("question_mark", "question", re.compile(r"\?")),
    Rule(
        "question_start",
        "question",
        _any(
            "how|what|when|where|which|who|is|are|do|does|did|can|could|will|would|should|any"
            "|has|have",
            start=True,
        ),
    ),
    Rule(
        "help_request",
        "question",
        _any(
            r"can you (?:help|tell|check|confirm|follow|dm|send|explain)",
            r"please (?:help|advise|follow|dm)",
            r"is there (?:a way|any way|a number)",
            r"how (?:do|can|would) i",
            r"who (?:do|should|can) i",
            r"is it possible",
            r"i need to (?:know|change|add)",
            r"any (?:update|info|news|idea)",
        ),
    ),
    Rule(
        "thanks",
        "praise",
        _any(r"thank(?:s| you)|thx|thnx|ty|appreciate[sd]?|kudos|shout ?out|props"),
    ),
    Rule(
        "positive_words",
        "praise",
        _any(
            r"love[sd]?|great|awesome|amazing|excellent|fantastic|best|perfect(?:ly)?|wonderful",
            r"recommend\w*|happy|pleased|satisfied|brilliant|enjoy\w*",
            r"easy to (?:use|set|install)|works (?:great|well|perfectly|fine)",
            r"(?:\w+n't|not|never) disappoint\w*",
        ),
    ),
    Rule(
        "negative_words",
        "complaint",
        _any(
            # "doesn't disappoint" is praise: the lookbehinds skip a negated "disappoint".
            r"worst|terrible|horrible|awful|unacceptable|ridiculous|rude|sucks?",
            r"(?<!n't )(?<!not )(?<!never )disappoint\w*",
            r"hate|fail\w*|useless|never again|frustrat\w*|annoy\w*|waste\w*|pathetic",
            r"disgust\w*|poor|bad|junk|joke|wtf|smh",
        ),
    ),
    Rule(
        "problem_words",
        "complaint",
        _any(
            r"delay\w*|cancel\w*|lost|missing|broken|broke|stuck|on hold|refund|defective",
            r"still (?:waiting|no|not|haven'?t|hasn'?t)|doesn'?t work|not working|stopped working",
            r"won'?t (?:work|connect|turn|let|answer)|can'?t (?:get|connect|find|log|hear)",
            r"crash\w*|error|no one|nobody|hung up|returned|return it|damaged|stranded|overbooked",
        ),
    ),
)
"""The rules, in the order their names are reported."""

_URL = re.compile(r"https?://\S+|\bwww\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])[.]?@\w+[:,]?")
_WS = re.compile(r"\s+")
# Smart quotes and apostrophes as typed on phones, mapped to ASCII so "can’t" matches "can't".
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def rule_text(text: str | None) -> str:
    """The form rules are matched on: entities decoded, no URLs or @handles, lower case."""
    if not text:
        return ""
    s = html.unescape(str(text)).translate(_QUOTES)
    s = _HANDLE.sub(" ", _URL.sub(" ", s))
    return _WS.sub(" ", s).strip().lower()


def fired_rules(text: str | None) -> list[str]:
    """Names of the :data:`RULES` that fire on a post, in :data:`RULES` order."""
    s = rule_text(text)
    return [rule.name for rule in RULES if rule.fires(s)]


_RULE_LABEL = {rule.name: rule.label for rule in RULES}


def rules_label(text: str | None) -> str:
    """The rules-only baseline: the first class, in a fixed precedence, with a fired rule.

    Precedence: ``feature_request`` > ``complaint`` > ``question`` > ``praise``;
    ``other`` when no rule fires. It mirrors the guidelines' decision rules and
    uses no embeddings and no tuned number.
    """
    fired = {_RULE_LABEL[name] for name in fired_rules(text)}
    for label in ("feature_request", "complaint", "question", "praise"):
        if label in fired:
            return label
    return "other"


@dataclass(frozen=True, slots=True)
class IntentParams:
    """The numbers the stage combines prototypes and rules with.

    Attributes:
        top_k: A class's similarity is the mean of this many highest cosines to its phrases.
        rule_weights: Added to the rule's class when the rule fires (by rule name).
        bias: Added to each class's score (by label).
        temperature: Scores are divided by it before the softmax.
    """

    top_k: int = 3
    rule_weights: Mapping[str, float] = field(default_factory=dict)
    bias: Mapping[str, float] = field(default_factory=dict)
    temperature: float = 0.05

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError("top_k must be at least 1")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        unknown = set(self.rule_weights) - set(_RULE_LABEL)
        if unknown:
            raise ValueError(f"unknown rules: {sorted(unknown)}")
        unknown = set(self.bias) - set(LABELS)
        if unknown:
            raise ValueError(f"unknown labels: {sorted(unknown)}")


DEFAULT_PARAMS = IntentParams(
    top_k=5,
    rule_weights={
        "feature_wish": 0.08,
        "question_mark": 0.1,
        "question_start": 0.02,
        "help_request": 0.0,
        "thanks": 0.02,
        "positive_words": 0.0,
        "negative_words": 0.15,
        "problem_words": 0.04,
    },
    bias={
        "complaint": 0.0,
        "question": -0.06,
        "praise": 0.0,
        "feature_request": -0.02,
        "other": 0.02,
    },
    temperature=0.0352,
)
"""Chosen on the dev split by ``bench/intent/tune_intent.py`` (its output: ``tuning.json``)."""


def _top_k_mean(
    sims: npt.NDArray[np.float32], seed_labels: Sequence[str], top_k: int
) -> npt.NDArray[np.float64]:
    out = np.zeros((sims.shape[0], len(LABELS)), dtype=np.float64)
    labels = np.asarray(seed_labels)
    for j, label in enumerate(LABELS):
        block = sims[:, labels == label]
        k = min(top_k, block.shape[1])
        # The k largest per row, without sorting the whole block.
        out[:, j] = np.partition(block, block.shape[1] - k, axis=1)[:, -k:].mean(axis=1)
    return out


def _softmax(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


class PrototypeIntent:
    """The intent stage: few-shot prototypes plus rules (registry name ``intent.prototypes``).

    See the module docstring for how a text is scored.

    NOTE: ``embedder`` is used only to embed :data:`SEEDS` at creation (and a
    batch if :meth:`run` is called without embeddings); the pipeline passes the
    batch's stored embeddings.
    """

    name = "intent"
    needs_embeddings = True
    off = False
    model_name = MODEL_NAME
    model_version = MODEL_VERSION

    def __init__(
        self,
        *,
        embedder: Embedder | None = None,
        params: IntentParams | None = None,
        threads: int | None = None,
        **_ignored: Any,
    ) -> None:
        """Embed the seed phrases once.

        Args:
            embedder: The embedder to share (default: a new :class:`Embedder`
                over the process's shared MiniLM).
            params: The combination numbers (default :data:`DEFAULT_PARAMS`).
            threads: Torch CPU threads when no ``embedder`` is given.
            **_ignored: Options meant for other stages, so one set of settings
                builds any stage.
        """
        self.embedder = embedder if embedder is not None else Embedder(threads=threads)
        self.params = params if params is not None else DEFAULT_PARAMS
        self.seed_labels = [label for label in LABELS for _ in SEEDS[label]]
        self.seed_texts = [text for label in LABELS for text in SEEDS[label]]
        self.seed_vectors = self.embedder.encode(self.seed_texts)

    def similarities(self, embeddings: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Per-class prototype similarity, ``(n, 5)`` in :data:`LABELS` order.

        Args:
            embeddings: L2-normalised MiniLM vectors, ``(n, 384)``.
        """
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.seed_vectors.shape[1]:
            raise NlpError(
                f"expected embeddings of shape (n, {self.seed_vectors.shape[1]}), got {emb.shape}"
            )
        return _top_k_mean(emb @ self.seed_vectors.T, self.seed_labels, self.params.top_k)

    def rule_scores(self, fired: Sequence[Sequence[str]]) -> npt.NDArray[np.float64]:
        """Per-class sum of the weights of the fired rules, ``(n, 5)`` in :data:`LABELS` order."""
        out = np.zeros((len(fired), len(LABELS)), dtype=np.float64)
        for i, names in enumerate(fired):
            for name in names:
                out[i, LABELS.index(_RULE_LABEL[name])] += self.params.rule_weights.get(name, 0.0)
        return out

    def probabilities(
        self, texts: Sequence[str], embeddings: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float64], list[list[str]]]:
        """Class probabilities ``(n, 5)`` and the fired rules of each text."""
        fired = [fired_rules(t) for t in texts]
        bias = np.array([self.params.bias.get(label, 0.0) for label in LABELS])
        scores = self.similarities(embeddings) + self.rule_scores(fired) + bias
        return _softmax(scores / self.params.temperature), fired

    def run(
        self, texts: Sequence[str], embeddings: npt.NDArray[np.float32] | None = None
    ) -> list[StageResult]:
        """Label each text; see the module docstring for ``score`` and ``data``.

        Args:
            texts: The batch's texts, verbatim.
            embeddings: Their MiniLM vectors; computed here when ``None``.
        """
        if not texts:
            return []
        if embeddings is None:
            embeddings = self.embedder.encode(texts)
        if len(embeddings) != len(texts):
            raise NlpError(f"{len(texts)} texts but {len(embeddings)} embeddings")
        probs, fired = self.probabilities(texts, embeddings)
        results = []
        for row, names in zip(probs, fired, strict=True):
            best = int(row.argmax())
            results.append(
                StageResult(
                    label=LABELS[best],
                    score=float(row[best]),
                    data={
                        "scores": {
                            label: round(float(p), 6) for label, p in zip(LABELS, row, strict=True)
                        },
                        "rules": names,
                    },
                )
            )
        return results

    def __repr__(self) -> str:
        return f"PrototypeIntent({self.model_name} {self.model_version})"
