"""JSON answers written by orjson, for the emulators' largest answers.

A burst's query pages (2,000 spells) and state listings (1,000 agents) are what both emulators answer
most of in a burst, and Starlette's `JSONResponse` (the standard library's encoder) took ~6 ms to write
each Salesforce page: a tenth of that emulator's thread, which also answers the composite calls. The
JSON is the same (compact, UTF-8, keys in their order); what orjson refuses (an integer beyond 64 bits,
a key that is not a string) is written by `JSONResponse` as before.

    return FastJSONResponse(page)
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # orjson.JSONEncodeError
            return super().render(content)


__all__ = ["FastJSONResponse"]
