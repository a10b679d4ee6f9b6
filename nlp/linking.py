"""The ``links`` stage: link a mention to a known customer, only on evidence.

:class:`EvidenceLinker` (registry ``links.evidence``) looks, for each mention,
for evidence that names a customer of the :class:`~listenwell.nlp.matching.CustomerIndex`:

========= ====== =====================================================================
kind      weight what
========= ====== =====================================================================
handle    0.95   the author's handle is a customer's handle on the same platform
                 (case, ``@`` and ``u/`` ignored); handles quoted in the text do not count
email     0.97   a customer's e-mail is in the text (case, ``+tags``, Gmail dots and
                 ``[at]``/``[dot]`` spelling ignored)
phone     0.90   a customer's phone number is in the text, in any formatting
                 (``phonenumbers``; no country code = the default or customers' regions)
account   0.90   an order or account number of the customer's attributes (or their
                 ``customer_id``) is in the text, whatever the separators
name      <=0.50 the author's display name is like the customer's name (weak)
agent     1.00   an agent confirmed this customer for this mention
========= ====== =====================================================================

A candidate's confidence is ``1 - prod(1 - weight)`` over its evidence.

**The result** of a mention (``StageResult``):

* ``label``: the best candidate's ``customer_id``, or ``None`` when there is no candidate;
* ``score``: that candidate's confidence (0..1);
* ``data``: ``customer_pk``; ``strength``; ``ambiguous``; ``evidence``, a list of
  ``{"kind", "value", "weight"}`` with e-mails, phone and account numbers masked
  (``j***e@example.com``, ``***0196``); and ``suggestions``, up to three other
  candidates as ``{"customer_id", "customer_pk", "confidence", "strength", "evidence"}``.

**Strength.** ``strength`` is ``"strong"`` when the best candidate has at least
one piece of strong evidence (handle, email, phone, account or agent) and no
other customer has strong evidence too -- or the others with strong evidence
are likely duplicate records of the best one (then ``data["possible_duplicates"]``
lists their ids). It is ``"weak"`` when the best candidate rests on a name
alone, or when two customers that are not one person have strong evidence (a
phone shared by a household): ``ambiguous`` is then true, the confidence is
that of the best candidate against the second, and both are offered.

**Only a strong result is a link.** A weak result keeps the best candidate as
``label`` so the dashboard can suggest it, but exports must not write it as a link:
``listenwell.store.links.effective_links`` returns no link for it.

**Decisions.** :meth:`EvidenceLinker.prepare` loads the agents' decisions. A
customer an agent rejected for a mention is never proposed for that mention
again (neither as label nor as a suggestion). A confirmed customer is the
label with confidence 1.0, strength ``"strong"`` and an ``agent`` evidence
item (plus whatever other evidence was found). Erased customers are not in the
index, so they are never linked, confirmed or not.

The stage needs no embeddings; it sets ``needs_context`` (author handle,
source and display name come with each text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import MentionContext, NlpError, StageResult
from .matching import (
    DEFAULT_ACCOUNT_FIELDS,
    DEFAULT_DUPLICATE_SCORE,
    DEFAULT_REGION,
    CustomerIndex,
    mask_email,
    mask_number,
    name_tokens,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from sqlalchemy import Engine

    from listenwell.store.links import CustomerCard, LinkDecision

__all__ = [
    "EVIDENCE_WEIGHTS",
    "MODEL_NAME",
    "MODEL_VERSION",
    "STRONG_KINDS",
    "EvidenceLinker",
]

MODEL_NAME = "listenwell-evidence-linker"
MODEL_VERSION = "1"

EVIDENCE_WEIGHTS = {
    "handle": 0.95,
    "email": 0.97,
    "phone": 0.9,
    "account": 0.9,
    "name": 0.5,
    "agent": 1.0,
}
"""The weight of each kind of evidence (``name`` is a maximum, scaled by similarity)."""

STRONG_KINDS = frozenset({"handle", "email", "phone", "account", "agent"})
"""Evidence kinds that can make a link on their own."""

_SOURCE_PLATFORMS = {"twitter": "x", "x": "x", "reddit": "reddit"}
_MAX_SUGGESTIONS = 3


@dataclass(slots=True)
class _Candidate:
    card: CustomerCard
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def strong(self) -> bool:
        return any(e["kind"] in STRONG_KINDS for e in self.evidence)

    @property
    def confidence(self) -> float:
        remaining = 1.0
        for e in self.evidence:
            remaining *= 1.0 - float(e["weight"])
        return round(1.0 - remaining, 4)

    def add(self, kind: str, value: str, weight: float | None = None) -> None:
        if any(e["kind"] == kind and e["value"] == value for e in self.evidence):
            return
        w = EVIDENCE_WEIGHTS[kind] if weight is None else weight
        self.evidence.append({"kind": kind, "value": value, "weight": round(w, 4)})

    def summary(self) -> dict[str, Any]:
        return {
            "customer_id": self.card.customer_id,
            "customer_pk": self.card.pk,
            "confidence": self.confidence,
            "strength": "strong" if self.strong else "weak",
            "evidence": list(self.evidence),
        }


class EvidenceLinker:
    """Link mentions to customers on evidence (see the module docstring for the rules).

    Args:
        index: The customers to link to; ``None`` until :meth:`prepare` loads them.
        decisions: Agents' decisions, ``{mention_id: [LinkDecision, ...]}``
            newest first; :meth:`prepare` loads them from the database.
        default_region: Region for phone numbers without a country code (setting
            ``linking.default_region``); ignored when ``index`` is given.
        account_fields: Regex of attribute keys holding order/account numbers
            (setting ``linking.account_fields``); ignored when ``index`` is given.
        name_min_score: Smallest name similarity (0..1) kept as weak evidence
            (setting ``linking.name_min_score``).
        duplicate_min_score: Two customers with strong evidence that score at
            least this as duplicates are taken as one person entered twice
            (setting ``linking.duplicate_min_score``).
    """

    name = "links"
    model_name = MODEL_NAME
    model_version = MODEL_VERSION
    needs_embeddings = False
    needs_context = True
    off = False

    def __init__(
        self,
        index: CustomerIndex | None = None,
        *,
        decisions: Mapping[int, Sequence[LinkDecision]] | None = None,
        default_region: str = DEFAULT_REGION,
        account_fields: str = DEFAULT_ACCOUNT_FIELDS,
        name_min_score: float = 0.8,
        duplicate_min_score: float = DEFAULT_DUPLICATE_SCORE,
    ) -> None:
        self.index = index
        self.decisions: dict[int, list[LinkDecision]] = {
            k: list(v) for k, v in (decisions or {}).items()
        }
        self.default_region = default_region
        self.account_fields = account_fields
        self.name_min_score = name_min_score
        self.duplicate_min_score = duplicate_min_score

    def prepare(self, engine: Engine) -> None:
        """Load the (not erased) customers and every agent's link decision."""
        from listenwell.store.links import customer_cards, list_decisions

        self.index = CustomerIndex(
            customer_cards(engine),
            default_region=self.default_region,
            account_fields=self.account_fields,
        )
        decisions: dict[int, list[LinkDecision]] = {}
        for d in list_decisions(engine):  # newest first
            decisions.setdefault(d.mention_id, []).append(d)
        self.decisions = decisions

    def run(
        self,
        texts: Sequence[str],
        embeddings: npt.NDArray[np.float32] | None = None,
        *,
        contexts: Sequence[MentionContext] | None = None,
    ) -> list[StageResult]:
        """Link each text's mention to its best-evidenced customer, if any.

        Args:
            texts: The mentions' texts.
            embeddings: Not used.
            contexts: One per text (author handle, source, display name, id);
                without them only the text is searched and decisions are not applied.

        Returns:
            One result per text (see the module docstring for its fields).

        Raises:
            NlpError: There is no index (call :meth:`prepare` first), or
                ``contexts`` has the wrong length.
        """
        if self.index is None:
            raise NlpError("the linker has no customers: call prepare(engine) or pass an index")
        if contexts is not None and len(contexts) != len(texts):
            raise NlpError(f"got {len(contexts)} contexts for {len(texts)} texts")
        return [
            self.link(text, contexts[k] if contexts is not None else None)
            for k, text in enumerate(texts)
        ]

    def link(self, text: str, context: MentionContext | None = None) -> StageResult:
        """The result for one mention (see :meth:`run`)."""
        index = self.index
        if index is None:
            raise NlpError("the linker has no customers: call prepare(engine) or pass an index")
        cands: dict[int, _Candidate] = {}

        def cand(card: CustomerCard) -> _Candidate:
            return cands.setdefault(card.pk, _Candidate(card))

        if context is not None and context.author_handle:
            platform = _SOURCE_PLATFORMS.get(context.source.lower(), context.source.lower())
            card = index.find_handle(platform, context.author_handle)
            if card is not None:
                cand(card).add("handle", f"{platform}:{context.author_handle.strip()}")
        for card, email in index.emails_in(text):
            cand(card).add("email", mask_email(email))
        for card, e164 in index.phones_in(text):
            cand(card).add("phone", mask_number(e164))
        for card, key, value in index.accounts_in(text):
            cand(card).add("account", f"{key} {mask_number(value)}")
        author = context.author_name if context is not None else None
        if author and name_tokens(author):
            for c in list(cands.values()):  # does the name agree with the evidenced customers?
                agreement = index.name_agreement(c.card.pk, author)
                if agreement is not None and agreement[0].score >= self.name_min_score:
                    c.add("name", author, EVIDENCE_WEIGHTS["name"] * agreement[1])
            for card, _m, weight in index.name_matches(author, min_score=self.name_min_score):
                cand(card).add("name", author, EVIDENCE_WEIGHTS["name"] * weight)
        decided = self.decisions.get(context.id, []) if context is not None else []
        for d in decided:
            if d.decision == "rejected":
                cands.pop(d.customer_pk, None)
        confirmed = next((d for d in decided if d.decision == "confirmed"), None)
        if confirmed is not None:
            card = index.card(confirmed.customer_pk)
            if card is not None:
                c = cand(card)
                c.evidence.insert(0, {"kind": "agent", "value": confirmed.actor, "weight": 1.0})
        return self._result(list(cands.values()), confirmed.customer_pk if confirmed else None)

    def _result(self, cands: list[_Candidate], confirmed_pk: int | None) -> StageResult:
        if not cands:
            return StageResult(
                label=None,
                score=None,
                data={
                    "customer_pk": None,
                    "strength": None,
                    "ambiguous": False,
                    "evidence": [],
                    "suggestions": [],
                },
            )
        cands.sort(
            key=lambda c: (
                c.card.pk != confirmed_pk,
                not c.strong,
                -c.confidence,
                c.card.customer_id,
            )
        )
        best, rest = cands[0], cands[1:]
        confidence = best.confidence
        strength = "strong" if best.strong else "weak"
        ambiguous = False
        duplicates: list[str] = []
        if best.card.pk == confirmed_pk:
            confidence = 1.0
        elif best.strong and rest and rest[0].strong:
            rivals = [c for c in rest if c.strong]
            if self.index is not None and all(
                self.index.compare(best.card.pk, c.card.pk).score >= self.duplicate_min_score
                for c in rivals
            ):
                # One person entered twice: link to the best-evidenced record, say so.
                duplicates = [c.card.customer_id for c in rivals]
            else:
                # Customers that are not one person share the evidence (a household phone):
                # the chance the best is right, the two taken as exclusive; an agent decides.
                p, q = best.confidence, rivals[0].confidence
                confidence = round(p * (1 - q) / (p * (1 - q) + q * (1 - p) or 1.0), 4)
                strength, ambiguous = "weak", True
        data: dict[str, Any] = {
            "customer_pk": best.card.pk,
            "strength": strength,
            "ambiguous": ambiguous,
            "evidence": list(best.evidence),
            "suggestions": [c.summary() for c in rest[:_MAX_SUGGESTIONS]],
        }
        if duplicates:
            data["possible_duplicates"] = duplicates
        return StageResult(label=best.card.customer_id, score=confidence, data=data)

    def __repr__(self) -> str:
        size = "unprepared" if self.index is None else f"{len(self.index)} customers"
        return f"EvidenceLinker({size})"
