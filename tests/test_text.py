from __future__ import annotations

import pytest

from bot.text import html_to_text, iso_date, normalize_space, stable_id


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param("<p>One</p><p>Two</p>", "One\n\nTwo", id="paragraphs"),
        pytest.param("<p>Intro:</p><ul><li>a</li><li>b</li></ul><p>End</p>",
                     "Intro:\n\n• a\n• b\n\nEnd", id="list"),
        pytest.param("<ol><li>a<ul><li>b</li></ul></li><li>c</li></ol>",
                     "• a\n  • b\n• c", id="nested-list"),
        pytest.param("<ul><li><p>a</p><p>b</p></li></ul>", "• a\nb", id="paragraphs-in-item"),
        pytest.param("one<br>two<br/><br>three", "one\ntwo\n\nthree", id="br"),
        pytest.param("<div>a</div><div>b</div>", "a\nb", id="div"),
        pytest.param("<h2>Title</h2>Body", "Title\n\nBody", id="heading"),
        pytest.param("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>",
                     "a b\nc", id="table"),
        pytest.param("Tom &amp; Jerry &mdash; &lt;b&gt;", "Tom & Jerry — <b>", id="entities"),
        pytest.param("&amp;lt;p&amp;gt;", "&lt;p&gt;", id="entities-decoded-once"),
        pytest.param("a<script>var x = '<p>';</script>b<style>p {}</style>c", "abc",
                     id="script-style"),
        pytest.param("<head><title>T</title></head><body>x</body>", "x", id="head-dropped"),
        pytest.param("  a \n\t b&nbsp;&nbsp;c  <b>d</b> <i>e</i>  ", "a b c d e",
                     id="whitespace"),
        pytest.param("<p>  </p><p>\n</p><p>x</p><p></p>", "x", id="empty-blocks"),
        pytest.param("a<!-- hidden -->b", "ab", id="comment"),
        pytest.param("", "", id="empty"),
    ],
)  # fmt: skip
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_html_to_text_survives_deep_nesting() -> None:
    assert html_to_text("<div>" * 5000 + "deep" + "</div>" * 5000) == "deep"


def test_normalize_space() -> None:
    assert normalize_space("  a\u00a0\u00a0b\n\tc ") == "a b c"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-09T10:15:03-04:00", "2024-05-09"),
        ("2024-05-09T23:30:00-07:00", "2024-05-10"),  # UTC date, not the local one
        ("2024-05-09T00:30:00+02:00", "2024-05-08"),
        ("2024-05-09T12:00:00.123Z", "2024-05-09"),
        ("2024-05-09", "2024-05-09"),
        ("May 09, 2024", "2024-05-09"),
        ("Thu, 09 May 2024 10:00:00 +0000", "2024-05-09"),
        ("20240509", "2024-05-09"),
        (1715212800, "2024-05-09"),  # epoch seconds
        (1715212800000, "2024-05-09"),  # epoch milliseconds
        (1715212800.5, "2024-05-09"),
        ("1715212800000", "2024-05-09"),
        (None, None),
        (True, None),
        ("", None),
        ("garbage", None),
        ("May 2024", None),  # no day: not a date
        ("Posted 3 Days Ago", None),
        ("2024-13-45", None),
        (float("nan"), None),
        (float("inf"), None),
        (10**30, None),
        ("9" * 5000, None),
    ],
)
def test_iso_date(value: str | int | float | None, expected: str | None) -> None:
    assert iso_date(value) == expected


def test_stable_id_ignores_case_and_spacing() -> None:
    assert stable_id("Acme", "Senior  Engineer") == stable_id("acme", " senior engineer ")
    assert len(stable_id("x")) == 16


def test_stable_id_keeps_parts_apart() -> None:
    assert stable_id("ab", "c") != stable_id("a", "bc")
    assert stable_id("a", "b") != stable_id("b", "a")
