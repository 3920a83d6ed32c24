"""Normalising the URLs and API versions that credentials are configured with (one rule for both systems)."""

from __future__ import annotations

import re

import httpx

_API_VERSION = re.compile(r"v\d+\.\d+")


def base_url(value: str, field: str, example: str) -> str:
    """`acme.my.salesforce.com/` -> `https://acme.my.salesforce.com`; an http(s) URL without a trailing slash."""
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = "https://" + value
    url = httpx.URL(value)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{field} must be a URL like {example}; got {value!r}")
    return value


def api_version(value: str, example: str) -> str:
    """`62.0` or `v62.0` -> `v62.0`."""
    value = value.strip()
    if not value.startswith("v"):
        value = "v" + value
    if not _API_VERSION.fullmatch(value):
        raise ValueError(f"api_version must look like {example!r}; got {value!r}")
    return value
