"""The public surface of langbatch_core."""

import importlib

import pytest

import langbatch_core
from langbatch_core import errors


def test_every_error_is_a_langbatch_error():
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.LangBatchError), name


def test_missing_key_error_names_the_variable():
    err = errors.MissingAPIKeyError("OPENAI_API_KEY")
    assert "OPENAI_API_KEY" in str(err)
    assert err.variable == "OPENAI_API_KEY"


def test_unknown_public_name_raises_attribute_error():
    with pytest.raises(AttributeError):
        langbatch_core.NoSuchThing  # noqa: B018


def test_every_exported_name_is_importable():
    for name, module in langbatch_core._EXPORTS.items():
        assert hasattr(importlib.import_module(module), name), f"{module} lacks {name}"
