"""Every registered source type, whatever a server answers, raises only SourceError."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fakes import AnswersEverything, any_board_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import SourceError
from bot.sources import Collected, collector_for, source_types

spec_for = any_board_spec


def test_every_interface_source_type_is_registered() -> None:
    assert set(source_types()) >= {"cvpr", "greenhouse"}


def _collections(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=3) | st.dictionaries(
        st.text(max_size=10), children, max_size=4
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20), _collections, max_leaves=20
)
json_text = json_values.map(lambda value: json.dumps(value).encode())
bodies = st.binary(max_size=2000) | json_text | st.text(max_size=500).map(str.encode)


@pytest.mark.parametrize("source_type", source_types())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_arbitrary_answers_raise_only_source_error(source_type: str, body: bytes) -> None:
    fetcher = AnswersEverything(body)
    try:
        result = asyncio.run(collector_for(source_type)(spec_for(source_type), fetcher))
    except SourceError:
        return
    assert isinstance(result, Collected)
    assert fetcher.requests <= 200, "requests per poll stay bounded"
