"""Broken and hostile config files: each ends in a loaded config or one clear `ConfigError`, with bounded work.

The limits are asserted as refusals (size, nesting, values once aliases are expanded), never as
seconds; the fuzz tests mutate the examples with fixed seeds, so every run tries the same files.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence_sync.models.config import PresenceSyncConfig, load_config, parse_config
from presence_sync.models.config import safe_yaml
from presence_sync.models.config.safe_yaml import MAX_CONFIG_CHARS, MAX_NESTING, MAX_VALUES
from presence_sync.models.errors import SHOWN_CHARS, ConfigError, ConfigProblem
from presence_sync.models.secrets import PrefectSecretResolver

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
TEXTS = {path.name: path.read_text(encoding="utf-8") for path in EXAMPLES}
ENV = {name: f"fake-{name.lower()}" for text in TEXTS.values() for name in re.findall(r"\$\{(\w+)\}", text)}
DEMO_TEXT = TEXTS["demo-contact-center.yaml"]
# Whole-file problems have no path or line of their own; every other problem names one.
WHOLE_FILE = ("the file is empty", "the file must be a mapping of settings", "the file is larger than")
# A problem line quotes at most a few shortened words: path, problem and fix of a few hundred characters each.
MAX_PROBLEM_LINE = 1_400


def _refuse_secret_blocks(block_name: str) -> str:
    raise AssertionError(f"loading a config must not read the Prefect Secret block {block_name}")


def outcome(text: str) -> PresenceSyncConfig | ConfigError:
    """Load `text`; anything but a config or a `ConfigError` escapes and fails the test."""
    try:
        return parse_config(
            text, config_dir=Path("/nonexistent"), source="fuzzed.yaml", environ=ENV,
            secret_resolver=PrefectSecretResolver(load_block=_refuse_secret_blocks),
        )
    except ConfigError as error:
        return error


def assert_clear(error: ConfigError) -> None:
    assert error.problems, "an error lists at least one problem"
    for problem in error.problems:
        assert problem.problem and problem.fix, problem
        assert problem.path or problem.line is not None or problem.problem.startswith(WHOLE_FILE), problem
    for line in str(error).splitlines():
        assert len(line) <= MAX_PROBLEM_LINE and line.isprintable(), line[:200]


def only_problem(text: str) -> ConfigProblem:
    error = outcome(text)
    assert isinstance(error, ConfigError), "expected the config to be refused"
    assert_clear(error)
    (problem,) = error.problems
    return problem


def nested_brackets(depth: int) -> str:
    return "salesforce: " + "[" * depth + "]" * depth + "\n"


def alias_bomb(levels: int, width: int = 9) -> str:
    """The "billion laughs": each level lists `width` aliases of the one before (width**levels values)."""
    lines = ["lol: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    lines += [f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]" for level in range(1, levels)]
    return "\n".join(lines) + "\n"


# --- each named failure ---------------------------------------------------------------------------


def test_a_control_character_is_named_with_its_line_and_column() -> None:
    lines = DEMO_TEXT.splitlines()
    target = next(index for index, line in enumerate(lines) if line.startswith("rules:"))
    lines[target] = "ru\x01les:"

    problem = only_problem("\n".join(lines))

    assert problem.line == target + 1
    assert "character U+0001 (column 3) is not allowed" in problem.problem and "delete it" in problem.fix


def test_three_thousand_nested_brackets_are_refused_at_the_nesting_limit() -> None:
    problem = only_problem(nested_brackets(3_000))

    assert problem.line == 1 and problem.path.startswith("salesforce[0][0]")
    assert f"nested more than {MAX_NESTING} levels deep" in problem.problem


def test_nesting_up_to_the_limit_is_read() -> None:
    error = outcome(nested_brackets(MAX_NESTING - 1))

    assert isinstance(error, ConfigError)
    assert not any("nested" in problem.problem for problem in error.problems)


def test_an_alias_bomb_is_refused_before_anything_expands_it(monkeypatch: pytest.MonkeyPatch) -> None:
    constructed: list[object] = []
    monkeypatch.setattr(safe_yaml._BoundedLoader, "construct_document", lambda self, node: constructed.append(node))

    problem = only_problem(alias_bomb(levels=9))

    assert f"expand to more than {MAX_VALUES:,} values" in problem.problem
    # l4 holds 9 copies of l3 (7,381 values each): the first level past the limit is named, with its line.
    assert problem.path == "l4" and problem.line == 5
    assert constructed == []


def test_the_duplicate_key_check_visits_each_node_once_however_often_aliases_repeat_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[int] = []
    check = safe_yaml._duplicate_keys
    monkeypatch.setattr(safe_yaml, "_duplicate_keys", lambda node, loc: checked.append(id(node)) or check(node, loc))
    text = "base: &base {window_minutes: 10}\n" + "".join(f"s{index}: [*base, *base, *base]\n" for index in range(20))

    error = outcome(text)

    assert isinstance(error, ConfigError) and "unknown setting 'base'" in str(error)
    assert len(checked) == len(set(checked)) == 2  # the document and `base`, each once


def test_aliases_that_refer_to_themselves_are_refused() -> None:
    problem = only_problem("sync: &loop [*loop]\n")

    assert problem.path == "sync[0]" and problem.line == 1 and "refers to itself" in problem.problem


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(DEMO_TEXT + "#" * MAX_CONFIG_CHARS, encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=ENV)

    (problem,) = caught.value.problems
    assert f"larger than {MAX_CONFIG_CHARS // 1024} KB" in problem.problem and "config file" in problem.fix
    assert only_problem(DEMO_TEXT + "#" * MAX_CONFIG_CHARS) == problem


def test_a_file_with_too_many_values_is_refused_while_it_is_parsed() -> None:
    problem = only_problem("links: [" + "1," * (MAX_VALUES + 10) + "]\n")

    assert f"holds more than {MAX_VALUES:,} values" in problem.problem and problem.line == 1


def test_a_long_value_is_shortened_in_every_message() -> None:
    long_name = "X" * 100_000
    texts = [
        DEMO_TEXT.replace("${PRESENCE_SYNC_SF_PASSWORD}", "${" + long_name + "}"),  # echoed in problem and fix
        DEMO_TEXT.replace("flow: password", f"flow: {long_name}"),
        DEMO_TEXT.replace("flow: password", 'flow: "' + " ".join(["long"] * 30_000) + '"'),
    ]
    for text in texts:
        error = outcome(text)
        assert isinstance(error, ConfigError)
        assert_clear(error)
        assert len(str(error)) < 2_000 and "characters)…" in str(error)


def test_unprintable_characters_are_escaped_in_messages() -> None:
    problem = only_problem(DEMO_TEXT.replace("sync:\n", 'sync:\n  "evil\\e[2J": 1\n'))

    assert "evil\\x1b[2J" in problem.problem and "\x1b" not in str(problem)


@pytest.mark.parametrize(
    ("value", "kind"),
    [("2020-99-99", "timestamp"), ("!!int many", "int"), ("!!float x", "float"), ("!!bool maybe", "bool"),
     ("!!timestamp never", "timestamp"), ("1" * 5_000, "int"), ("0x_", "int")],
    ids=["bad date", "!!int", "!!float", "!!bool", "!!timestamp", "5000 digits", "bare 0x"],
)
def test_a_value_yaml_can_not_read_is_named_with_its_line(value: str, kind: str) -> None:
    lines = DEMO_TEXT.splitlines()
    target = next(index for index, line in enumerate(lines) if "window_minutes:" in line)
    lines[target] = f"  window_minutes: {value}"

    problem = only_problem("\n".join(lines))

    assert problem.line == target + 1 and f"can't be read as a YAML {kind}" in problem.problem
    assert "quotes" in problem.fix


def test_the_examples_are_well_inside_the_limits() -> None:
    for name, text in TEXTS.items():
        assert len(text) < MAX_CONFIG_CHARS // 20, name
        assert len(list(yaml.compose(text).value)) > 0
    assert isinstance(outcome(DEMO_TEXT), PresenceSyncConfig)


def test_shortened_words_keep_their_start_and_end() -> None:
    problem = ConfigProblem("a" * 1_000, "b" * 1_000, "c" * 1_000)

    for part in (problem.path, problem.problem, problem.fix):
        assert len(part) <= SHOWN_CHARS and "…(" in part


# --- fuzz: seeded mutations of the examples -------------------------------------------------------

_INSERTIONS = [
    "\x00", "\x01", "\x1b", "\x7f", "\ufffe", "\t", "\r", "\n", "\u2028", "\ufeff", "[", "]", "{", "}", ":", ": ", "- ",
    "#", "&a ", "*a", "*nope", "!!python/object:os.system ", "!!binary ", "!!set ", "!!omap ", "!!int ", "!!timestamp ",
    "<<: ", "%YAML 1.1\n", "---\n", "...\n", "'", '"', "|", ">", "?", "@", "`", "${", "${X", "}", "prefect-secret:",
    "~", "null", "yes", ".nan", "-.inf", "1e999", "0x", "2020-13-45", "12:30:00", "é", "💥", "\\", "%",
]
_VALUES = [
    "", "null", "~", "[]", "{}", "yes", "no", "0", "-1", "1e999", ".nan", "2020-13-45", "!!int x", "!!float y",
    "'quoted'", '"\\e[31m"', "${UNSET_VARIABLE}", "prefect-secret:", "[a, [b, [c]]]", "{a: {b: {c: d}}}",
    "*undefined", "&anchor value", "x" * 5_000, "y " * 3_000, "1" * 5_000, "|\n  block", "!!binary '@@'",
]
_KEY_VALUE = re.compile(r"^(\s*(?:- )?[\w.-]+:)\s*(.*)$")


def mutate(text: str, rng: random.Random) -> str:
    """One hostile edit (or a few) of a config, chosen by `rng`."""
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        lines = text.splitlines(keepends=True) or [""]
        at = rng.randrange(len(lines))
        kind = rng.randrange(10)
        if kind == 0:  # a character or token somewhere
            position = rng.randrange(len(text) + 1)
            text = text[:position] + rng.choice(_INSERTIONS) + text[position:]
        elif kind == 1:  # a span deleted
            start = rng.randrange(len(text) + 1)
            text = text[:start] + text[start + rng.randrange(1, 200) :]
        elif kind == 2:  # a value replaced
            match = _KEY_VALUE.match(lines[at].rstrip("\n"))
            if match:
                lines[at] = f"{match.group(1)} {rng.choice(_VALUES)}\n"
            text = "".join(lines)
        elif kind == 3:  # a line repeated (duplicate keys, duplicate list entries)
            lines.insert(at, lines[at])
            text = "".join(lines)
        elif kind == 4:  # indentation changed
            lines[at] = " " * rng.randrange(0, 9) + lines[at].lstrip(" ")
            text = "".join(lines)
        elif kind == 5:  # lines swapped
            other = rng.randrange(len(lines))
            lines[at], lines[other] = lines[other], lines[at]
            text = "".join(lines)
        elif kind == 6:  # deep nesting
            depth = rng.choice([5, MAX_NESTING - 2, MAX_NESTING + 1, 3_000])
            opening, closing = rng.choice([("[", "]"), ("{a: ", "}")])
            text = text + f"\nsync: {opening * depth}{closing * depth}\n"
        elif kind == 7:  # an alias bomb under a key
            text = alias_bomb(levels=rng.randrange(2, 10), width=rng.randrange(2, 10)) + text
        elif kind == 8:  # truncated
            text = text[: rng.randrange(len(text) + 1)]
        else:  # an anchor on one value, aliases to it elsewhere
            match = _KEY_VALUE.match(lines[at].rstrip("\n"))
            if match and match.group(2) and not match.group(2).startswith(("&", "*", "|", ">")):
                lines[at] = f"{match.group(1)} &fuzz {match.group(2)}\n"
                lines.insert(rng.randrange(at + 1, len(lines) + 1), f"{match.group(1).strip().lstrip('- ')} *fuzz\n")
            text = "".join(lines)
    return text


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("example", sorted(TEXTS))
def test_mutated_examples_load_or_fail_with_one_clear_error(example: str, seed: int) -> None:
    rng = random.Random(f"{example}:{seed}")
    refused = 0
    for _ in range(20):
        result = outcome(mutate(TEXTS[example], rng))
        if isinstance(result, ConfigError):
            assert_clear(result)
            refused += 1
    assert refused > 0  # the mutations do break files


# No deadline: the work is bounded by the loader's limits, not by a clock (the suite runs on busy machines).
@settings(deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_arbitrary_text_loads_or_fails_with_one_clear_error(text: str) -> None:
    result = outcome(text)

    assert isinstance(result, (PresenceSyncConfig, ConfigError))
    if isinstance(result, ConfigError):
        assert_clear(result)


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
                    max_leaves=30))
def test_arbitrary_yaml_data_under_the_known_sections_fails_clearly(value: object) -> None:
    for section in ("salesforce", "cxone", "statuses", "rule", "sync", "links", "profiles"):
        text = re.sub(rf"^{section}:.*?(?=^\S)", lambda _: yaml.safe_dump({section: value}), DEMO_TEXT, flags=re.M | re.S)
        result = outcome(text)
        assert isinstance(result, ConfigError | PresenceSyncConfig)
        if isinstance(result, ConfigError):
            assert_clear(result)
