"""Language stage over py3langid: clear sentences, cleaning, ``und``, restriction, options."""

from __future__ import annotations

import importlib.metadata
from contextlib import nullcontext

import pytest

from listenwell.nlp.base import NlpError, Stage
from listenwell.nlp.language import UNDETERMINED, LangidLanguage, clean, load_identifier

# Written for these tests: one plain customer-service sentence per language.
SENTENCES = [
    ("en", "@acme my order arrived broken and support won't answer my emails #fail"),
    ("es", "Muchas gracias por la ayuda, el vuelo llegó a tiempo y el personal fue muy amable."),
    ("fr", "Le colis est arrivé cassé et le service client ne répond pas à mes courriels."),
    ("de", "Das Paket ist beschädigt angekommen und der Kundendienst antwortet nicht."),
    ("it", "Il pacco è arrivato rotto e il servizio clienti non risponde alle mie email."),
    ("pt", "O pacote chegou danificado e o atendimento ao cliente não responde aos meus e-mails."),
    ("nl", "Het pakket kwam beschadigd aan en de klantenservice reageert niet op mijn e-mails."),
    ("ru", "Посылка пришла повреждённой, а служба поддержки не отвечает на мои письма."),
    ("ja", "荷物が壊れて届きましたが、カスタマーサポートから返事がありません。"),
]


@pytest.fixture(scope="module")
def language() -> LangidLanguage:
    return LangidLanguage()


def test_is_a_stage(language):
    assert isinstance(language, Stage)
    assert (language.name, language.needs_embeddings, language.off) == ("language", False, False)
    assert language.model_name == "py3langid"
    assert language.model_version == importlib.metadata.version("py3langid")


@pytest.mark.parametrize(("code", "text"), SENTENCES)
def test_clear_sentences(language, code, text):
    result = language.detect(text)
    assert result.label == code
    assert result.score >= 0.9
    assert result.data["language"] == code and "reason" not in result.data


@pytest.mark.parametrize(
    "text",
    ["", None, "   ", "😀😀👍", "🇫🇷🎉", "@acme #love https://t.co/abc", "ok", "&amp; 123 !!!"],
)
def test_und_when_there_is_nothing_to_read(language, text):
    result = language.detect(text)
    assert result.label == UNDETERMINED
    assert result.score == 0.0
    assert result.data["reason"] == "too_short"


def test_und_when_unsure_but_the_guess_is_kept(language):
    result = language.detect("Thanks!")
    assert result.label == UNDETERMINED and result.data["reason"] == "low_confidence"
    assert 0.0 < result.score < language.min_confidence
    assert result.data["language"] == "en"
    trusting = LangidLanguage(min_confidence=0.0)
    assert trusting.detect("Thanks!").label == "en"


def test_no_linguistic_content_is_und_whatever_the_threshold():
    # py3langid answers "zxx" (no linguistic content) for codes like these.
    result = LangidLanguage(min_confidence=0.0).detect("ABC123 XYZ789")
    assert result.label == UNDETERMINED and result.data["reason"] == "no_language"
    assert result.data["language"] == "zxx"


def test_run_returns_one_result_per_text(language):
    texts = [text for _, text in SENTENCES] + ["", "🙂"]
    results = language.run(texts)
    assert [r.label for r in results] == [code for code, _ in SENTENCES] + ["und", "und"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("@Acme_Help my order! https://t.co/x #fail", "my order!"),
     ("fish &amp; chips 😀 ok", "fish & chips ok"),
     ("email me at joe@acme.com", "email me at joe@acme.com"),
     ("zero\u200dwidth\ufe0f joiner", "zerowidth joiner"),
     (None, "")],
)  # fmt: skip
def test_clean(raw, expected):
    assert clean(raw) == expected


def test_restricted_languages():
    restricted = LangidLanguage(languages=["EN", "fr"])
    assert restricted.languages == ["en", "fr"]
    # Renormalised over two languages, a short English text becomes confident.
    assert restricted.detect("Thanks!").label == "en"
    assert restricted.detect("Merci beaucoup pour votre aide").label == "fr"
    german = restricted.detect("Das Paket ist beschädigt angekommen.")
    assert german.label in {"en", "fr", UNDETERMINED}


def test_identifier_is_loaded_once_per_language_set():
    assert load_identifier() is load_identifier(None)
    assert load_identifier(["fr", "en"]) is load_identifier(["en", "fr"])
    assert load_identifier(["en"]) is not load_identifier()


@pytest.mark.parametrize(
    ("kwargs", "expect"),
    [({"min_confidence": 0.3}, nullcontext()), ({"min_confidence": 1.5}, pytest.raises(ValueError)),
     ({"min_letters": -1}, pytest.raises(ValueError)),
     ({"languages": ["xx"]}, pytest.raises(NlpError, match="xx")),
     ({"languages": []}, pytest.raises(NlpError, match="at least one")),
     ({"threads": 2}, nullcontext())],
)  # fmt: skip
def test_options(kwargs, expect):
    with expect:
        LangidLanguage(**kwargs)
