"""The emulators' large answers are written by orjson (emulators/responses.py): the same JSON as
Starlette's JSONResponse wrote, byte for byte where there is no float, and the standard library's
rendering for what orjson refuses."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse
from hypothesis import given
from hypothesis import strategies as st

from presence_sync.emulators.responses import FastJSONResponse

_SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text()


def _documents(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    )


@given(_documents(_SCALARS))
def test_the_same_bytes_as_starlettes_json_response(document: Any) -> None:
    assert FastJSONResponse(document).body == JSONResponse(document).body


@given(_documents(_SCALARS | st.floats(allow_nan=False, allow_infinity=False)))
def test_the_same_document_with_floats(document: Any) -> None:
    assert json.loads(FastJSONResponse(document).body) == json.loads(JSONResponse(document).body)


def test_what_orjson_refuses_is_written_as_before() -> None:
    for document in ({1: "a key that is not a string"}, {"big": 2**70}):
        assert FastJSONResponse(document).body == JSONResponse(document).body
