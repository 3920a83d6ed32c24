"""The sync's pure parts: the stored rule as the engine's rule book, API records as observations, the budget."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from presence_sync.connectors import ApiUsage, CxoneAgentState, PresenceSpell
from presence_sync.engine import PREVIOUS_STATE, AgentLink, CxoneTarget, Side
from presence_sync.models.store import AgentLink as StoredLink
from presence_sync.models.store import LinkedBy, PresenceRule, Store
from presence_sync.tasks.sync.budget import MAX_INTERVAL_SECONDS, PollBudget
from presence_sync.tasks.sync.observations import cxone_observation, spell_observations
from presence_sync.tasks.sync.rulebook import StoredRuleError, load_rulebook

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0.replace(second=int(seconds), microsecond=int(seconds % 1 * 1_000_000))


# -- the rule book ------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        yield opened


def _rule(name: str, publisher: dict[str, str], subscriber: dict[str, str], skip: bool = True) -> PresenceRule:
    return PresenceRule(
        name=name,
        skip_validation=skip,
        publisher_rows=[{"acd": acd, "salesforce": sf} for acd, sf in publisher.items()],
        subscriber_rows=[{"salesforce": sf, "acd": acd} for sf, acd in subscriber.items()],
    )


def test_the_rule_book_is_what_onboarding_stored_with_user_assignments_over_team_ones(store: Store) -> None:
    store.setup.replace_rule(
        _rule("Default Presence", {"Available": "Available_for_Chats", "Unavailable: Break": "On_Break"},
              {"On_Break": "Unavailable: Break", "Resume_Previous": "Previous State"}),
        teams={11: "Voice Team A"},
    )
    store.setup.replace_rule(_rule("Quiet", {"ACW": "After_Call_Work"}, {}, skip=False), users={7: "agent7@example.com"})
    store.setup.upsert_links([StoredLink(cxone_agent_id=7, cxone_username="a7", team_id=11, sf_user_id="005A",
                                         sf_username="a7", linked_by=LinkedBy.EMAIL)])

    book = load_rulebook(store)

    default = book.rules["Default Presence"]
    assert dict(default.publisher) == {"Available": "Available_for_Chats", "Unavailable:Break": "On_Break"}
    assert dict(default.subscriber) == {"On_Break": CxoneTarget.unavailable("Break"), "Resume_Previous": PREVIOUS_STATE}
    assert default.skip_unavailable_code_validation and not book.rules["Quiet"].skip_unavailable_code_validation
    assert book.rule_for(AgentLink(7, "005A", 11)).name == "Quiet"  # the user's assignment wins
    assert book.rule_for(AgentLink(8, "005B", 11)).name == "Default Presence"
    assert book.rule_for(AgentLink(9, "005C", 12)) is None


def test_an_empty_store_gives_an_empty_rule_book(store: Store) -> None:
    assert load_rulebook(store).rule_for(AgentLink(7, "005A", 11)) is None


def test_a_damaged_stored_rule_names_the_row_and_the_fix(store: Store) -> None:
    store.setup.replace_rule(_rule("Broken", {"Open": "Available_for_Chats"}, {}), teams={11: "Voice Team A"})
    with pytest.raises(StoredRuleError) as caught:
        load_rulebook(store)
    message = str(caught.value)
    assert "stored rule 'Broken' publisher row 0" in message and "write 'Available'" in message
    assert "presence-sync onboard CONFIG" in message


# -- observations ---------------------------------------------------------------------------------


def test_a_cxone_state_record_is_an_observation_named_by_its_spell() -> None:
    record = {"agentId": 7, "agentStateId": 2, "agentStateName": "Unavailable", "outStateId": 4,
              "outStateDescription": "ACW", "isACW": True, "startDate": "2026-01-05T09:00:01.250Z"}
    observation = cxone_observation(CxoneAgentState.from_api(record))
    assert (observation.agent_id, observation.side, observation.value.key) == (7, Side.CXONE, "ACW")  # type: ignore[union-attr]
    assert observation.at == at(1.25)
    assert observation.source_id == "cx:7:2:4:2026-01-05T09:00:01.250Z"


def _spell(spell_id: str, user: str, status: str, start: float, end: float | None = None) -> PresenceSpell:
    return PresenceSpell(spell_id, user, status, at(start), None if end is None else at(end), end is None)


def test_spells_give_status_changes_and_log_outs_but_not_ends_followed_by_a_new_status() -> None:
    spells = [
        _spell("0Hn1", "005A", "On_Break", 1, end=2),  # ended by the next one: a change, said by its start
        _spell("0Hn2", "005A", "Lunch", 2, end=2),  # same millisecond, then logged out
        _spell("0Hn3", "005B", "Available", 3),  # current
        _spell("0Hn4", "005X", "Available", 3),  # not linked
    ]
    found = spell_observations(spells, {"005A": 7, "005B": 8})
    assert [(key, o.agent_id, o.value, o.at) for key, o in found] == [
        ("0Hn1", 7, "On_Break", at(1)),
        ("0Hn2", 7, "Lunch", at(2)),
        ("0Hn2:end", 7, None, at(2)),
        ("0Hn3", 8, "Available", at(3)),
    ]
    # A sweep reading them again after the polls saw all but the log-out: only the log-out is new.
    again = spell_observations(spells, {"005A": 7, "005B": 8}, known={"0Hn1", "0Hn2", "0Hn3"})
    assert [(key, o.value, o.at) for key, o in again] == [("0Hn2:end", None, at(2))]


# -- the API budget -------------------------------------------------------------------------------


def test_a_large_budget_keeps_the_base_interval() -> None:
    budget = PollBudget(base_interval=1.0, reserve_fraction=0.2)
    budget.record(ApiUsage(used=1_000, limit=5_000_000))
    budget.record(ApiUsage(used=1_001, limit=5_000_000))
    assert budget.interval() == 1.0 and not budget.stretched


def test_a_budget_that_would_run_out_today_stretches_the_interval_to_last_the_day() -> None:
    budget = PollBudget(base_interval=1.0, reserve_fraction=0.2)
    budget.record(ApiUsage(used=10_000, limit=15_000))
    # 15,000 - 10,000 used - 3,000 reserve = 2,000 calls for 86,400 s at one call a poll.
    assert budget.interval() == pytest.approx(43.2)
    budget.record(ApiUsage(used=10_003, limit=15_000))  # a poll now costs ~3 calls (writes too)
    assert budget.interval() > 43.2
    assert "polling slowed" in budget.describe()


def test_a_spent_budget_polls_at_the_slowest_rate_to_see_it_replenish() -> None:
    budget = PollBudget(base_interval=1.0, reserve_fraction=0.2)
    budget.record(ApiUsage(used=14_500, limit=15_000))
    assert budget.interval() == MAX_INTERVAL_SECONDS


# -- the Salesforce poll's watermark ----------------------------------------------------------------


class _Spells:
    """A Salesforce client that answers every spell query with `records` and keeps the SOQL it was sent."""

    api_usage = None

    def __init__(self, records: list[dict]) -> None:
        self.records = records
        self.queries: list[str] = []
        self.returned: list[int] = []  # records per query
        self.in_background: list[bool] = []  # per query: sent by a task of its own (a sweep)
        self.fail_in_background: Exception | None = None
        self.main = asyncio.current_task()

    async def query_pages(self, soql: str):
        background = asyncio.current_task() is not self.main
        if background and self.fail_in_background is not None:
            self.in_background.append(True)
            self.queries.append(soql)
            self.returned.append(0)
            raise self.fail_in_background
        self.queries.append(soql)
        self.in_background.append(background)
        page = [r for r in self.records if _after_floor(r, soql)]
        self.returned.append(len(page))
        yield page


def _after_floor(record: dict, soql: str) -> bool:
    if "StatusStartDate >" not in soql:
        return bool(record["IsCurrentState"])
    floor = datetime.fromisoformat(soql.split("StatusStartDate > ")[1].split(" ")[0].replace("Z", "+00:00"))
    return datetime.fromisoformat(record["StatusStartDate"].replace("Z", "+00:00")) > floor


def _floor_of(soql: str) -> datetime:
    return datetime.fromisoformat(soql.split("StatusStartDate > ")[1].split(" ")[0].replace("Z", "+00:00"))


def _lunch(spell_id: str, user_id: str, start: str) -> dict:
    return {"Id": spell_id, "UserId": user_id, "ServicePresenceStatus": {"DeveloperName": "Lunch"},
            "StatusStartDate": start, "StatusEndDate": None, "IsCurrentState": True}


async def _poll(source, when: datetime) -> list:  # type: ignore[no-untyped-def]
    """One poll, saved; then the rest of the interval, in which a background sweep runs."""
    polled = await source.fetch(when)
    source.committed(polled)
    for _ in range(3):
        await asyncio.sleep(0)
    return polled.observations


async def test_polls_read_from_the_watermark_and_only_sweeps_reread_the_overlap() -> None:
    from presence_sync.tasks.sync.sources import SPELL_OVERLAP, SPELL_SWEEP_EVERY, SalesforcePollSource

    burst = [_lunch(f"0Hn{i}", f"005{i}", "2026-01-05T09:00:01.000Z") for i in range(50)]
    client = _Spells(burst)
    users = {f"005{i}": i for i in range(50)}
    source = SalesforcePollSource(client, "2026-01-05T09:00:00.000Z", (), PollBudget(1.0, 0.1), users)  # type: ignore[arg-type]
    assert len(await _poll(source, at(2))) == 50
    for second in range(3, 19):  # a poll a second, nothing changing
        assert await _poll(source, at(second)) == []  # what is read again is no news
    assert SPELL_SWEEP_EVERY.total_seconds() == 5
    polls = [(q, n) for q, n, sweep in zip(client.queries, client.returned, client.in_background) if not sweep]
    sweeps = [(q, n) for q, n, sweep in zip(client.queries, client.returned, client.in_background) if sweep]
    # A poll reads from the watermark: the burst once, then never again.
    assert [n for _, n in polls] == [50] + [0] * 16
    # A sweep, every 5 s in the background, reads from the watermark the previous sweep started from,
    # less the overlap: the burst three times in all, then, once it is older than that, no more.
    assert [n for _, n in sweeps] == [50, 50, 50, 0]
    assert [_floor_of(q) for q, _ in sweeps] == [
        at(0) - SPELL_OVERLAP,  # the saved watermark the window started from
        at(0) - SPELL_OVERLAP,
        at(6) - timedelta(seconds=1) - SPELL_OVERLAP,  # where the sweep at 7 s started: the poll at 6 s less the skew
        at(11) - timedelta(seconds=1) - SPELL_OVERLAP,
    ]
    source.close()


class _TwoPages:
    """A Salesforce client whose spell query answers two pages, the second only once `more` is set."""

    api_usage = None

    def __init__(self, first: list[dict], second: list[dict]) -> None:
        self.pages = (first, second)
        self.more = asyncio.Event()
        self.queries: list[str] = []

    async def query_pages(self, soql: str):
        self.queries.append(soql)
        yield self.pages[0]
        await self.more.wait()
        yield self.pages[1]


async def test_a_poll_hands_out_each_pages_starts_and_keeps_log_outs_for_the_whole_read() -> None:
    from presence_sync.tasks.sync.sources import Polled, SalesforcePollSource

    a_now = _lunch("0HnA2", "005A", "2026-01-05T09:00:02.000Z")
    a_before = {**_lunch("0HnA1", "005A", "2026-01-05T08:59:00.000Z"), "IsCurrentState": False,
                "StatusEndDate": "2026-01-05T09:00:02.000Z"}  # followed by 0HnA2: a status change, no log-out
    b_out = {**_lunch("0HnB1", "005B", "2026-01-05T08:58:00.000Z"), "IsCurrentState": False,
             "StatusEndDate": "2026-01-05T09:00:01.000Z"}  # no spell after it: B logged out of Omni
    client = _TwoPages([a_now], [a_before, b_out])
    source = SalesforcePollSource(client, "2026-01-05T09:00:00.000Z", (), PollBudget(1.0, 0.1), {"005A": 1, "005B": 2})  # type: ignore[arg-type]
    handed: list[Polled] = []
    fetch = asyncio.ensure_future(source.fetch(at(3), handed.append))
    for _ in range(20):  # the first page is handed out while the read is still out
        await asyncio.sleep(0)
    assert not fetch.done()
    assert [(o.source_id, o.value) for polled in handed for o in polled.observations] == [("0HnA2", "Lunch")]
    assert handed[0].cursors == {} and handed[0].seen_keys == []  # the batch's cursor state covers them

    client.more.set()
    polled = await fetch
    assert [(o.agent_id, o.source_id, o.value) for o in polled.observations] == [(2, "0HnB1:end", None)]
    assert sorted(polled.seen_keys) == ["0HnA2", "0HnB1:end"]
    assert "ORDER BY IsCurrentState DESC, StatusStartDate" in client.queries[0]
    source.close()


async def test_a_spell_salesforce_commits_late_is_read_by_the_next_sweep_once() -> None:
    from presence_sync.tasks.sync.sources import SalesforcePollSource

    client = _Spells([])
    users = {"005A": 1, "005B": 2}
    source = SalesforcePollSource(client, "2026-01-05T09:00:00.000Z", (), PollBudget(1.0, 0.1), users)  # type: ignore[arg-type]
    seen: list[str] = []
    for second in range(1, 15):
        if second == 4:  # committed now, stamped 3.5 s ago: the polls from the watermark have passed it
            client.records.append(_lunch("0HnLATE", "005A", "2026-01-05T09:00:00.500Z"))
        if second == 5:
            client.records.append(_lunch("0HnB", "005B", "2026-01-05T09:00:04.900Z"))
        seen += [f"{o.source_id}@{second}" for o in await _poll(source, at(second))]
    # The sweep started at 6 s found it; the poll at 7 s handed it out, once.
    assert seen == ["0HnB@5", "0HnLATE@7"]
    source.close()


async def test_a_failed_sweep_is_logged_and_started_again_while_the_polls_go_on(caplog: pytest.LogCaptureFixture) -> None:
    from presence_sync.connectors import TransientError
    from presence_sync.tasks.sync.sources import SalesforcePollSource

    client = _Spells([_lunch("0HnA", "005A", "2026-01-05T09:00:01.500Z")])
    source = SalesforcePollSource(client, "2026-01-05T09:00:00.000Z", (), PollBudget(1.0, 0.1), {"005A": 1})  # type: ignore[arg-type]
    client.fail_in_background = TransientError("Salesforce answered 503", system="Salesforce")
    assert [o.source_id for o in await _poll(source, at(1))] == ["0HnA"]  # the sweep it started fails
    client.fail_in_background = None
    assert await _poll(source, at(2)) == []  # the poll goes on, and starts the sweep again at once
    assert "a sweep of Salesforce presence spells failed (Salesforce answered 503)" in caplog.text
    assert client.in_background == [False, True, False, True] and client.returned[-1] == 1
    source.close()


async def test_polls_paced_slower_than_sweeps_read_the_overlap_themselves() -> None:
    from presence_sync.tasks.sync.sources import SPELL_OVERLAP, SalesforcePollSource

    client = _Spells([])
    budget = PollBudget(base_interval=1.0, reserve_fraction=0.2)
    budget.record(ApiUsage(used=14_000, limit=15_000))  # a poll a minute or so
    source = SalesforcePollSource(client, "2026-01-05T09:00:00.000Z", (), budget, {})  # type: ignore[arg-type]
    await _poll(source, at(1))
    await _poll(source, at(50))
    assert client.in_background == [False, False]  # one request a poll: the poll is the sweep
    assert [_floor_of(q) for q in client.queries] == [at(0) - SPELL_OVERLAP, at(0) - SPELL_OVERLAP]
    source.close()


async def test_a_read_still_out_allows_one_quarter_chunk_with_its_first_page() -> None:
    """While a read that asks for each page after the one before hands out pages, the tick decides one
    quarter chunk of it (its first page's: what people did just before a burst), and the rest once it
    ended, so that deciding does not slow the read. A read that asks for its pages at once (CXone's)
    has its pages decided in whole chunks as they come, and holds nothing else back."""
    from presence_sync.tasks.sync.runner import _PagesIn
    from presence_sync.tasks.sync.sources import Polled

    class Read:
        def __init__(self, pages_at_once: bool) -> None:
            self.pages_at_once = pages_at_once

    salesforce, console, cxone = Read(False), Read(False), Read(True)
    pages = _PagesIn()
    assert pages.allow_chunk()  # no read out: the agents left over are decided meanwhile
    pages.hand_out(cxone, Polled())  # type: ignore[arg-type]
    assert pages.handed.popleft()[1] is True  # in whole chunks
    assert pages.allow_chunk()
    pages.hand_out(salesforce, Polled())  # type: ignore[arg-type]
    assert pages.arrived.is_set() and pages.handed[-1][1] is False
    assert pages.allow_chunk()
    pages.chunk_taken()
    pages.hand_out(salesforce, Polled())  # type: ignore[arg-type]
    assert not pages.allow_chunk()  # the read's later pages wait for its end
    pages.hand_out(cxone, Polled())  # type: ignore[arg-type]
    assert not pages.allow_chunk()  # a CXone page allows no quarter chunk of the others
    pages.hand_out(console, Polled())  # type: ignore[arg-type]
    assert pages.allow_chunk()  # another such read's first page
    pages.chunk_taken()
    assert not pages.allow_chunk()
    pages.ended(salesforce)
    pages.ended(console)
    assert pages.allow_chunk()
