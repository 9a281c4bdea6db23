"""Prompt templates: sandboxed, checked against the columns, the fast path equal to Jinja's output."""

from __future__ import annotations

import pandas as pd
import pytest

from langbatch_core import TemplateError
from langbatch_core.tables import PromptTemplate

FRAME = pd.DataFrame(
    {
        "review": ["good", None, "ok\r\nfine", "=1+1"],
        "stars": pd.array([5, 1, None, 3], dtype="Int64"),
        "price": [1.5, float("nan"), 2.0, 0.1],
        "Review Text": ["a", "b", "c", "d"],
    }
)


def test_a_misspelt_column_is_named_with_the_closest_one():
    with pytest.raises(TemplateError, match=r"column 'reveiw'.*Did you mean 'review'\?") as caught:
        PromptTemplate("Sentiment of: {{ reveiw }}").check(FRAME.columns)
    assert caught.value.issues[0].column == "reveiw"


def test_a_template_that_does_not_compile():
    with pytest.raises(TemplateError, match=r"does not compile.*line 1"):
        PromptTemplate("{{ review ")


def test_the_sandbox_refuses_python_internals():
    template = PromptTemplate("{{ review.__class__.__mro__ }}")
    with pytest.raises(TemplateError, match=r"sandbox|fails on row 1"):
        template.render_all(FRAME)


def test_empty_cells_render_empty_and_are_counted():
    texts, empty = PromptTemplate("[{{ review }}|{{ stars }}]").render_all(FRAME)
    assert texts == ["[good|5]", "[|1]", "[ok\r\nfine|]", "[=1+1|3]"]
    assert empty == {"review": [2], "stars": [3]}


@pytest.mark.parametrize(
    "source",
    [
        "Sentiment of: {{ review }}",
        "{{review}} / {{ stars }} / {{ price }}\r\nend\n",
        "no columns at all",
        "{{ review }}{{ review }}",
    ],
)
def test_the_fast_path_gives_jinja_s_text(source):
    fast = PromptTemplate(source)
    assert fast.is_simple
    slow = PromptTemplate(source)
    slow._parts = None  # force the Jinja path
    assert fast.render_all(FRAME) == slow.render_all(FRAME)


def test_jinja_features_and_row_access():
    template = PromptTemplate("{% if stars %}{{ stars * 2 }}{% endif %}|{{ row['Review Text'] | upper }}")
    assert not template.is_simple
    texts, _ = template.render_all(FRAME)
    assert texts == ["10|A", "2|B", "|C", "6|D"]


def test_the_fast_path_over_several_chunks_keeps_every_row_in_order():
    frame = pd.DataFrame({"n": range(25_000), "text": [f"t{i}" if i % 7 else None for i in range(25_000)]})
    fast = PromptTemplate("{{ n }}:{{ text }}")
    slow = PromptTemplate("{{ n }}:{{ text }}")
    slow._parts = None
    assert fast.render_all(frame) == slow.render_all(frame)
