"""The stage protocol, the pass-through stage and the registry."""

from __future__ import annotations

from contextlib import nullcontext

import pytest

from listenwell import nlp
from listenwell.nlp.base import (
    REGISTRY,
    NotInstalledError,
    PassThroughStage,
    Stage,
    StageResult,
    UnknownStageError,
    available_stages,
    create_stage,
    register_stage,
    require,
)
from listenwell.nlp.pipeline import Pipeline
from listenwell.nlp.sentiment import VaderSentiment


class EchoStage:
    """A minimal stage written against the protocol alone."""

    name = "echo"
    model_name = "echo"
    model_version = "1"
    needs_embeddings = False
    off = False

    def run(self, texts, embeddings=None):
        return [StageResult(label=t[:10], score=float(len(t))) for t in texts]


class NeedsVectors(EchoStage):
    name = "vectors"
    needs_embeddings = True


def test_builtins_are_listed_by_name():
    assert {"sentiment.finetuned", "sentiment.vader"} <= set(available_stages())


def test_create_stage_by_name(vader):
    stage = create_stage("sentiment.vader")
    assert isinstance(stage, VaderSentiment) and isinstance(stage, Stage)
    assert stage.name == "sentiment" and not stage.off


def test_off_is_a_pass_through_for_any_stage():
    stage = create_stage("themes.off")
    assert isinstance(stage, PassThroughStage) and stage.off and stage.name == "themes"
    assert stage.run(["a", "b"]) == [StageResult(None), StageResult(None)]


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("sentiment.vader", nullcontext()),
        ("sentiment.nope", pytest.raises(UnknownStageError, match="sentiment.vader")),
        ("vader", pytest.raises(UnknownStageError, match="registered")),
        ("", pytest.raises(UnknownStageError)),
    ],
)
def test_unknown_names_list_what_exists(name, expect):
    with expect:
        create_stage(name)


def test_register_a_stage_like_an_extension():
    try:
        register_stage("echo.test", EchoStage)
        with pytest.raises(ValueError, match="already registered"):
            register_stage("echo.test", EchoStage)
        register_stage("echo.test", f"{__name__}:EchoStage", replace=True)
        stage = create_stage("echo.test")
        assert isinstance(stage, EchoStage)
        assert stage.run(["hello"]) == [StageResult("hello", 5.0)]
    finally:
        REGISTRY.pop("echo.test", None)


def test_missing_extra_fails_late_with_the_install_line():
    with pytest.raises(NotInstalledError, match=r"pip install 'nope-pkg>=1'"):
        require("listenwell_no_such_module_xyz", "pip install 'nope-pkg>=1'")
    assert require("json", "unused").dumps([]) == "[]"


@pytest.mark.parametrize(
    ("stages", "kwargs", "expect"),
    [
        ([EchoStage()], {}, nullcontext()),
        ([EchoStage(), PassThroughStage("themes")], {}, nullcontext()),
        ([object()], {}, pytest.raises(TypeError, match="not a stage")),
        ({"a": EchoStage()}, {}, pytest.raises(TypeError, match="list")),
        ([EchoStage(), EchoStage()], {}, pytest.raises(ValueError, match="unique")),
        ([NeedsVectors()], {}, pytest.raises(ValueError, match="embedder")),
        ([PassThroughStage("embeddings")], {}, pytest.raises(ValueError, match="reserved")),
        ([EchoStage()], {"batch_size": 0}, pytest.raises(ValueError, match="batch_size")),
    ],
)
def test_pipeline_checks_its_stages(stages, kwargs, expect):
    with expect:
        Pipeline(stages, **kwargs)


def test_off_stages_do_not_run():
    p = Pipeline([EchoStage(), PassThroughStage("themes")])
    assert p.stage_names == ["echo"]


def test_package_all_is_honest():
    for item in nlp.__all__:
        assert hasattr(nlp, item)
    assert len(set(nlp.__all__)) == len(nlp.__all__)


def test_options_read_settings_with_defaults():
    from types import SimpleNamespace

    from listenwell.config import Settings

    assert nlp.NlpOptions.from_settings(Settings()) == nlp.NlpOptions()
    custom = SimpleNamespace(nlp=SimpleNamespace(batch_size=8, threads=1, sentiment_model="vader"))
    opts = nlp.NlpOptions.from_settings(custom)
    assert (opts.batch_size, opts.threads, opts.sentiment_model) == (8, 1, "vader")
    assert opts.low_confidence == nlp.NlpOptions().low_confidence
