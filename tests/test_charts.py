"""Chart builders are pure: a DataFrame in, a plotly figure out."""

from __future__ import annotations

import pandas as pd
import pytest

from listenwell.app_pages import charts

DAYS = pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02"], utc=True)


def test_net_sentiment():
    df = pd.DataFrame(
        {"bucket": DAYS, "sentiment": ["positive", "negative", "negative"], "mentions": [6, 2, 2]}
    )
    assert charts.net_sentiment(df) == pytest.approx(20.0)  # (6 - 4) / 10
    assert charts.net_sentiment(df.iloc[0:0]) is None


def test_sentiment_chart_has_bars_and_a_net_line():
    df = pd.DataFrame(
        {"bucket": DAYS, "sentiment": ["positive", "negative", "neutral"], "mentions": [3, 1, 4]}
    )
    fig = charts.sentiment_chart(df)
    bars = {t.name: list(t.y) for t in fig.data if t.type == "bar"}
    assert bars == {"positive": [3], "negative": [1], "neutral": [4]}
    (line,) = [t for t in fig.data if t.type == "scatter"]
    assert list(line.y) == pytest.approx([50.0, 0.0])  # day 1: (3-1)/4, day 2: 0/4
    assert fig.data[0].marker.color == charts.SENTIMENT_COLORS[fig.data[0].name]


def test_volume_chart_handles_no_data():
    fig = charts.volume_chart(pd.DataFrame(columns=["bucket", "source", "mentions"]))
    assert fig.layout.annotations[0].text == "No mentions"


def test_ranking_bar_puts_the_largest_on_top():
    df = pd.DataFrame({"author_handle": ["@a", "@b", "@c"], "mentions": [5, 9, 1]})
    fig = charts.ranking_bar(df, "author_handle", "mentions", title="t")
    assert list(fig.data[0].y) == ["@c", "@a", "@b"]  # plotly draws the last category on top


def test_theme_table_counts_shares_and_week_over_week_change():
    w1, w2 = pd.Timestamp("2024-06-03", tz="UTC"), pd.Timestamp("2024-06-10", tz="UTC")
    df = pd.DataFrame(
        [
            (w1, 1, "battery", "negative", 10),
            (w2, 1, "battery", "negative", 12),
            (w2, 1, "battery", "positive", 1),
            (w2, 1, "battery", None, 2),
            (w2, 2, "delivery", "neutral", 4),
        ],
        columns=["bucket", "theme_id", "theme", "sentiment", "mentions"],
    )
    table = charts.theme_table(df).set_index("theme_id")
    assert table.loc[1, "mentions"] == 25
    assert table.loc[1, "negative %"] == round(100 * 22 / 23, 1)  # unlabelled left out
    assert (table.loc[1, "week before"], table.loc[1, "last week"]) == (10, 15)
    assert table.loc[1, "change %"] == 50.0
    assert pd.isna(table.loc[2, "change %"])  # nothing the week before: no percentage
    assert list(table.index) == [1, 2]  # largest first
    assert charts.theme_table(df.iloc[0:0]).empty
    fig = charts.theme_sentiment_bar(df)
    assert {t.name for t in fig.data} == {"negative", "positive", "neutral", "not labelled"}


def test_user_text_in_chart_labels_cannot_become_tags_or_links():
    evil = '<a href="javascript:alert(1)">x</a><b>bold</b>'
    fig = charts.ranking_bar(
        pd.DataFrame({"author_handle": [evil], "mentions": [3]}),
        "author_handle",
        "mentions",
        title="Top authors",
    )
    labels = [str(v) for trace in fig.data for v in trace.y]
    assert labels and all("<" not in v and ">" not in v for v in labels)
    words = charts.word_weights([(evil, 0.5), ("fine", -0.1)])
    assert all("<" not in str(v) for trace in words.data for v in trace.y)
