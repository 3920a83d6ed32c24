"""RetryPolicy: which failures are transient, and the delays between attempts."""

from __future__ import annotations

import httpx
import pytest

from presence_sync.connectors.retry import RetryPolicy, parse_retry_after


def test_backoff_is_full_jitter_under_an_exponential_ceiling_with_a_cap() -> None:
    draws = iter([1.0, 1.0, 1.0, 1.0, 1.0, 0.25])
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, random=lambda: next(draws))

    delays = [policy.backoff(attempt) for attempt in range(1, 7)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 2.0]  # capped at 8, then a quarter of the cap


def test_backoff_can_be_zero_with_full_jitter() -> None:
    assert RetryPolicy(random=lambda: 0.0).backoff(5) == 0.0


def test_retry_after_overrides_the_computed_backoff() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, random=lambda: 1.0)

    assert policy.backoff(1, retry_after=12.0) == 12.0
    assert policy.backoff(3, retry_after=0.0) == 0.0


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert RetryPolicy(max_delay=30.0, random=lambda: 1.0).backoff(5000) == 30.0


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_are_retried_only_when_repeating_is_safe(status: int) -> None:
    policy = RetryPolicy()
    assert policy.should_retry_status(status, idempotent=True)
    assert not policy.should_retry_status(status, idempotent=False)


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_is_retried_even_for_creates(status: int) -> None:
    policy = RetryPolicy()
    assert policy.should_retry_status(status, idempotent=True)
    assert policy.should_retry_status(status, idempotent=False)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_client_errors_are_permanent(status: int) -> None:
    assert not RetryPolicy().should_retry_status(status, idempotent=True)


@pytest.mark.parametrize("error_type", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_errors_before_sending_are_always_retried(error_type: type[httpx.TransportError]) -> None:
    assert RetryPolicy().should_retry_error(error_type("x"), idempotent=False)


@pytest.mark.parametrize("error_type", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError,
                                        httpx.RemoteProtocolError])
def test_errors_after_sending_are_retried_only_for_idempotent_requests(
    error_type: type[httpx.TransportError],
) -> None:
    policy = RetryPolicy()
    assert policy.should_retry_error(error_type("x"), idempotent=True)
    assert not policy.should_retry_error(error_type("x"), idempotent=False)


@pytest.mark.parametrize("error_type", [httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError])
def test_configuration_mistakes_are_not_retried(error_type: type[httpx.TransportError]) -> None:
    assert not RetryPolicy().should_retry_error(error_type("x"), idempotent=True)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (" 1.5 ", 1.5), ("0", 0.0), (None, None), ("Wed, 21 Oct 2026 07:28:00 GMT", None),
     ("-3", None), ("nan", None)],
)
def test_retry_after_is_read_as_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


@pytest.mark.parametrize(("field", "value"), [("max_attempts", 0), ("base_delay", -1.0), ("max_delay", -0.1)])
def test_nonsense_settings_are_refused_with_the_field_named(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]
