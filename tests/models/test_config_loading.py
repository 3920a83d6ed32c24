"""Loading config files: examples, YAML and file errors, env expansion, secret references, rendering."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from presence_sync.engine import OMNI_OFFLINE, AcdState, CxoneTarget
from presence_sync.models.config import (
    ClientCredentialsAuth,
    JwtAuth,
    PasswordAuth,
    PresenceSyncConfig,
    load_config,
    parse_config,
    render_emulator_config_yaml,
)
from presence_sync.models.errors import ConfigError, SecretReferenceError
from presence_sync.models.secrets import PrefectSecretResolver, PrefectSecretStr, preload_prefect_secrets

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO = EXAMPLES / "demo-contact-center.yaml"
REAL_ORG = EXAMPLES / "real-org.yaml"
DEMO_TEXT = DEMO.read_text(encoding="utf-8")
DEMO_ENV = {name: f"fake-{name.lower()}-value" for name in re.findall(r"\$\{(\w+)\}", DEMO_TEXT)}
SF_CREDENTIALS = {"client_id": "emu-client", "client_secret": "emu-s3cret-${x}", "username": "integration@example.com",
                  "password": "emu-pass", "security_token": "emu-token", "my_domain_host": "localhost:8401"}
CX_CREDENTIALS = {"tenant_id": "emu-tenant", "client_id": "emu-cx-client", "client_secret": "emu-cx-secret",
                  "access_key_id": "emu-key", "access_key_secret": "emu-key-secret", "access_key_user": "admin@example.com"}


class CountingBlockLoader:
    """A Prefect Secret block loader for tests: serves fixed blocks and counts loads per block."""

    def __init__(self, blocks: dict[str, str]) -> None:
        self.blocks = blocks
        self.loads: list[str] = []

    def __call__(self, block_name: str) -> str:
        self.loads.append(block_name)
        if block_name not in self.blocks:
            raise ValueError(f"Unable to find block document named {block_name} for block type secret")
        return self.blocks[block_name]


def test_demo_example_is_the_demo_contact_center(tmp_path: Path) -> None:
    config = load_config(DEMO, environ=DEMO_ENV)

    assert [status.developer_name for status in config.statuses] == [
        "Available_for_Chats", "Available", "On_Break", "Lunch", "On_a_Call",
        "After_Call_Work", "Missed_Contact", "Case_Work", "Resume_Previous",
    ]
    assert [status.option for status in config.statuses].count("online") == 3
    assert [config.profile_statuses(profile) for profile in config.profiles] == [
        tuple(status.developer_name for status in config.statuses)
    ] * 2
    assert config.rule is None and config.presence_rules == config.rules
    rule, chat = config.rules
    assert rule.name == "Default Presence" and rule.skip_unavailable_code_validation
    assert rule.teams == ("Voice Team A", "Voice Team B")
    assert [(str(row.acd), row.salesforce) for row in rule.publisher] == [
        ("Available", "Available_for_Chats"), ("Unavailable: Break", "On_Break"), ("Unavailable: Lunch", "Lunch"),
        ("Unavailable: CRM Work", "Case_Work"), ("InboundContact", "On_a_Call"), ("OutboundContact", "On_a_Call"),
        ("ACW", "After_Call_Work"), ("Refused", "Missed_Contact"),
    ]
    assert [(row.salesforce, str(row.acd)) for row in rule.subscriber] == [
        ("Available_for_Chats", "Available"), ("Available", "Available"), ("On_Break", "Unavailable: Break"),
        ("Lunch", "Unavailable: Lunch"), ("Case_Work", "Unavailable: CRM Work"), ("Resume_Previous", "Previous State"),
    ]
    assert rule.unavailable_codes() == {"Break", "Lunch", "CRM Work"}
    assert (rule.on_cxone_logout, rule.on_omni_logout) == (OMNI_OFFLINE, CxoneTarget.unavailable())
    assert chat.name == "Chat Presence" and not chat.skip_unavailable_code_validation
    assert chat.teams == ("Chat Team",)
    assert ("Available_for_Chats", "Unavailable: CRM Work") in [(row.salesforce, str(row.acd)) for row in chat.subscriber]
    assert (chat.on_cxone_logout, chat.on_omni_logout) == (None, CxoneTarget.unavailable())
    assert config.salesforce.login_url == "http://localhost:8401"
    assert isinstance(config.salesforce.auth, PasswordAuth)
    assert config.cxone.auth_url == config.cxone.api_url == "http://127.0.0.1:8402"
    assert not config.cxone.uses_discovery


def test_demo_example_takes_every_secret_from_the_environment() -> None:
    config = load_config(DEMO, environ=DEMO_ENV)
    auth = config.salesforce.auth
    assert isinstance(auth, PasswordAuth)

    assert auth.client_secret.get_secret_value() == DEMO_ENV["PRESENCE_SYNC_SF_CLIENT_SECRET"]
    assert auth.password_with_token().get_secret_value() == (
        DEMO_ENV["PRESENCE_SYNC_SF_PASSWORD"] + DEMO_ENV["PRESENCE_SYNC_SF_SECURITY_TOKEN"]
    )
    assert config.cxone.access_key_secret.get_secret_value() == DEMO_ENV["PRESENCE_SYNC_CXONE_ACCESS_KEY_SECRET"]


def test_real_org_example_loads_without_touching_prefect() -> None:
    loader = CountingBlockLoader({})

    config = load_config(REAL_ORG, environ={}, secret_resolver=PrefectSecretResolver(load_block=loader))

    assert isinstance(config.salesforce.auth, ClientCredentialsAuth)
    assert config.salesforce.uses_my_domain
    assert config.cxone.uses_discovery and config.cxone.discovery_url == "https://cxone.niceincontact.com"
    assert isinstance(config.sync.store_url, PrefectSecretStr)
    assert loader.loads == []


def test_secrets_never_appear_in_reprs_dumps_or_errors() -> None:
    config = load_config(DEMO, environ=DEMO_ENV)
    secrets = [DEMO_ENV[name] for name in DEMO_ENV if name.endswith(("SECRET", "PASSWORD", "TOKEN"))]

    shown = [repr(config), str(config), config.model_dump_json(), str(config.model_dump())]
    broken = DEMO_TEXT.replace("interval_seconds: 1.0", "interval_seconds: -1").replace("environment: production", "environment: prod")
    with pytest.raises(ConfigError) as caught:
        parse_config(broken, config_dir=DEMO.parent, environ=DEMO_ENV)
    shown += [str(caught.value), repr(caught.value)]

    for text in shown:
        for secret in secrets:
            assert secret not in text


def test_a_bad_secret_value_is_not_echoed_in_the_error() -> None:
    text = DEMO_TEXT.replace("password: ${PRESENCE_SYNC_SF_PASSWORD}", "password: 31337")

    with pytest.raises(ConfigError) as caught:
        parse_config(text, config_dir=DEMO.parent, environ=DEMO_ENV)

    assert "salesforce.auth.password" in str(caught.value) and "31337" not in str(caught.value)


def test_every_missing_environment_variable_is_named_with_its_path() -> None:
    environ = {name: value for name, value in DEMO_ENV.items() if name not in ("PRESENCE_SYNC_SF_PASSWORD", "PRESENCE_SYNC_CXONE_CLIENT_SECRET")}

    with pytest.raises(ConfigError) as caught:
        load_config(DEMO, environ=environ)

    assert [(problem.path, problem.problem) for problem in caught.value.problems] == [
        ("salesforce.auth.password", "environment variable PRESENCE_SYNC_SF_PASSWORD is not set"),
        ("cxone.client_secret", "environment variable PRESENCE_SYNC_CXONE_CLIENT_SECRET is not set"),
    ]
    assert str(DEMO) in str(caught.value)
    assert all(problem.line for problem in caught.value.problems)


def test_an_empty_environment_variable_is_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(DEMO, environ={**DEMO_ENV, "PRESENCE_SYNC_SF_CLIENT_ID": ""})

    assert [problem.path for problem in caught.value.problems] == ["salesforce.auth.client_id"]
    assert "PRESENCE_SYNC_SF_CLIENT_ID is empty" in str(caught.value)


def test_environment_references_expand_inside_values_and_can_be_escaped() -> None:
    text = DEMO_TEXT.replace("login_url: http://localhost:8401", "login_url: http://${EMULATOR_HOST}:8401").replace(
        "name: Default Presence", "name: Costs $${DOLLARS}"
    )

    config = parse_config(text, config_dir=DEMO.parent, environ={**DEMO_ENV, "EMULATOR_HOST": "localhost"})

    assert config.salesforce.login_url == "http://localhost:8401"
    assert config.rules[0].name == "Costs ${DOLLARS}"


def test_the_process_environment_is_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DEMO_ENV.items():
        monkeypatch.setenv(name, value)

    config = load_config(DEMO)

    assert config.cxone.client_id == DEMO_ENV["PRESENCE_SYNC_CXONE_CLIENT_ID"]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    lines = DEMO_TEXT.splitlines()
    target = next(index for index, line in enumerate(lines) if "Unavailable: Break" in line and "publisher" not in line)
    lines[target] = "    - acd: Unavailable: Break"
    path.write_text("\n".join(lines), encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=DEMO_ENV)

    (problem,) = caught.value.problems
    assert problem.line == target + 1
    assert "YAML syntax error" in problem.problem and "quotes" in problem.fix


def test_a_key_given_twice_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(DEMO_TEXT.replace("  window_minutes: 10\n", "  window_minutes: 10\n  window_minutes: 20\n"), encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=DEMO_ENV)

    (problem,) = caught.value.problems
    assert problem.path == "sync.window_minutes" and "appears twice" in problem.problem


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "file not found"),
        ("", "the file is empty"),
        ("- just\n- a list\n", "must be a mapping"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
    ],
    ids=["missing", "empty", "not a mapping", "not utf-8"],
)
def test_unusable_files_get_one_clear_problem(tmp_path: Path, content: str | bytes | None, words: str) -> None:
    path = tmp_path / "presence-sync.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert len(caught.value.problems) == 1 and words in str(caught.value)


def test_a_folder_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_relative_paths_start_at_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "app.key").write_text("-----BEGIN PRIVATE KEY-----\nMIIfake\n-----END PRIVATE KEY-----\n", encoding="utf-8")
    text = DEMO_TEXT.replace(
        "    flow: password\n",
        "    flow: jwt\n    private_key_file: keys/app.key\n",
    )
    text = re.sub(r"    (client_secret|password|security_token): .*\n", "", text, count=3)
    path = tmp_path / "center.yaml"
    path.write_text(text, encoding="utf-8")

    config = load_config(path, environ=DEMO_ENV)

    auth = config.salesforce.auth
    assert isinstance(auth, JwtAuth)
    assert auth.private_key_file == tmp_path / "keys" / "app.key"
    assert auth.signing_key().get_secret_value().startswith("-----BEGIN PRIVATE KEY-----")
    assert config.sync.store_url.get_secret_value() == f"sqlite:///{tmp_path / '.presence-sync' / 'state.db'}"


def test_absolute_sqlite_and_postgresql_store_urls_are_kept() -> None:
    for url in ("sqlite:////var/lib/presence-sync/state.db", "postgresql://sync:pw@db:5432/presence"):
        config = parse_config(DEMO_TEXT.replace("sqlite:///.presence-sync/state.db", url), config_dir=DEMO.parent, environ=DEMO_ENV)
        assert config.sync.store_url.get_secret_value() == url


def test_a_bad_store_url_is_reported_without_its_password() -> None:
    text = DEMO_TEXT.replace("sqlite:///.presence-sync/state.db", "postgresql+asyncpg://sync:hunter2@db/presence")

    with pytest.raises(ConfigError) as caught:
        parse_config(text, config_dir=DEMO.parent, environ=DEMO_ENV)

    (problem,) = caught.value.problems
    assert problem.path == "sync.store_url" and "'asyncpg' is not supported" in problem.problem
    assert "hunter2" not in str(caught.value)


def test_defaults_apply_when_sync_is_omitted(tmp_path: Path) -> None:
    text = DEMO_TEXT[: DEMO_TEXT.index("# --- How the sync runs")]

    sync = parse_config(text, config_dir=tmp_path, environ=DEMO_ENV).sync

    assert (sync.interval_seconds, sync.window_minutes, sync.conflict_policy, sync.flap_threshold) == (1.0, 10, "newest_wins", 6)
    assert (sync.echo_timeout_seconds, sync.max_concurrency, sync.budget_reserve_fraction) == (30.0, 64, 0.2)
    assert sync.store_url.get_secret_value() == f"sqlite:///{tmp_path / '.presence-sync' / 'state.db'}"


def test_prefect_secret_blocks_are_loaded_lazily_once_each() -> None:
    loader = CountingBlockLoader({"acme-sf-consumer-secret": "sf-secret", "acme-cxone-client-secret": "cx-secret"})
    config = load_config(REAL_ORG, environ={}, secret_resolver=PrefectSecretResolver(load_block=loader))
    secret = config.salesforce.auth.client_secret

    assert loader.loads == []
    assert [secret.get_secret_value() for _ in range(3)] == ["sf-secret"] * 3
    assert config.cxone.client_secret.get_secret_value() == "cx-secret"
    assert loader.loads == ["acme-sf-consumer-secret", "acme-cxone-client-secret"]
    assert "sf-secret" not in repr(config) and "prefect-secret:acme-sf-consumer-secret" in repr(secret)


def test_a_missing_block_names_the_block_and_the_config_path() -> None:
    loader = CountingBlockLoader({})
    config = load_config(REAL_ORG, environ={}, secret_resolver=PrefectSecretResolver(load_block=loader))

    with pytest.raises(SecretReferenceError) as caught:
        config.cxone.access_key_secret.get_secret_value()

    (problem,) = caught.value.problems
    assert problem.path == "cxone.access_key_secret"
    assert "'acme-cxone-access-key-secret' does not exist" in problem.problem and "Blocks -> Secret" in problem.fix


def test_preload_reports_every_unloadable_block_at_once() -> None:
    loader = CountingBlockLoader({"acme-sf-consumer-secret": "sf-secret"})
    config = load_config(REAL_ORG, environ={}, secret_resolver=PrefectSecretResolver(load_block=loader))

    with pytest.raises(SecretReferenceError) as caught:
        preload_prefect_secrets(config)

    assert [problem.path for problem in caught.value.problems] == ["cxone.client_secret", "cxone.access_key_secret", "sync.store_url"]


def test_a_failing_prefect_api_is_reported_without_its_error_text() -> None:
    def unreachable(block_name: str) -> str:
        raise ConnectionError("connect to http://prefect:4200 failed; value=leaked-s3cret")

    config = load_config(REAL_ORG, environ={}, secret_resolver=PrefectSecretResolver(load_block=unreachable))

    with pytest.raises(SecretReferenceError) as caught:
        config.salesforce.auth.client_secret.get_secret_value()

    assert "ConnectionError" in str(caught.value) and "PREFECT_API_URL" in str(caught.value)
    assert "leaked-s3cret" not in str(caught.value)


def test_pickled_references_carry_no_resolved_value() -> None:
    loader = CountingBlockLoader({"acme-sf-consumer-secret": "sf-secret"})
    config = load_config(REAL_ORG, environ={}, secret_resolver=PrefectSecretResolver(load_block=loader))
    secret = config.salesforce.auth.client_secret
    secret.get_secret_value()

    payload = pickle.dumps(secret)

    assert b"sf-secret" not in payload
    assert pickle.loads(payload) == secret


def test_the_emulator_config_renders_ready_to_load(tmp_path: Path) -> None:
    text = render_emulator_config_yaml(
        salesforce_url="http://localhost:18401", cxone_url="http://127.0.0.1:18402",
        salesforce_credentials=SF_CREDENTIALS, cxone_credentials=CX_CREDENTIALS,
    )
    path = tmp_path / "presence-sync.yaml"
    path.write_text(text, encoding="utf-8")

    config = load_config(path, environ={})
    demo = load_config(DEMO, environ=DEMO_ENV)

    assert "public fake" in text
    auth = config.salesforce.auth
    assert isinstance(auth, PasswordAuth)
    assert config.salesforce.login_url == "http://localhost:18401"
    assert auth.client_secret.get_secret_value() == "emu-s3cret-${x}"
    assert auth.password_with_token().get_secret_value() == "emu-passemu-token"
    assert (config.cxone.auth_url, config.cxone.api_url) == ("http://127.0.0.1:18402", "http://127.0.0.1:18402")
    assert config.cxone.access_key_user == "admin@example.com"
    for section in ("statuses", "profiles", "connected_app", "rule", "links"):
        assert getattr(config, section) == getattr(demo, section)
    assert config.sync.store_url.get_secret_value() == f"sqlite:///{tmp_path / '.presence-sync' / 'state.db'}"


def test_an_emulator_without_a_security_token_renders_without_one() -> None:
    text = render_emulator_config_yaml(
        salesforce_url="http://localhost:18401", cxone_url="http://127.0.0.1:18402",
        salesforce_credentials={**SF_CREDENTIALS, "security_token": ""}, cxone_credentials=CX_CREDENTIALS,
    )

    auth = parse_config(text, config_dir=DEMO.parent, environ={}).salesforce.auth

    assert isinstance(auth, PasswordAuth) and auth.security_token is None
    assert auth.password_with_token().get_secret_value() == "emu-pass"


def test_rendering_without_the_emulator_credentials_says_what_is_missing() -> None:
    with pytest.raises(ValueError, match="salesforce_credentials lacks client_secret, password"):
        render_emulator_config_yaml(
            salesforce_url="http://localhost:1", cxone_url="http://localhost:2",
            salesforce_credentials={"client_id": "a", "username": "u"}, cxone_credentials=CX_CREDENTIALS,
        )


def test_a_config_can_be_built_in_code_without_a_file() -> None:
    config = PresenceSyncConfig.model_validate(
        {
            "salesforce": {"environment": "sandbox", "auth": {"flow": "password", "client_id": "c", "client_secret": "s",
                                                              "username": "u", "password": "p"}},
            "cxone": {"tenant_id": "t", "client_id": "c", "client_secret": "s", "access_key_id": "k",
                      "access_key_secret": "ks", "access_key_user": "admin"},
            "statuses": [{"label": "Ready", "option": "online", "channels": ["sfdc_phone"]}],
            "rule": {"name": "R", "publisher": [{"acd": "Available", "salesforce": "Ready"}], "users": [42, "a@x.com"]},
        },
        context={"environ": {}},
    )

    assert config.salesforce.login_url == "https://test.salesforce.com"
    assert config.rule.publisher[0].acd == AcdState.parse("Available")
    assert config.rule.users == (42, "a@x.com")
    assert config.presence_rules == (config.rule,)  # the one-rule form
    assert (config.rule.on_cxone_logout, config.rule.on_omni_logout) == (OMNI_OFFLINE, CxoneTarget.unavailable())


@pytest.mark.parametrize(("stored", "expected"), [("s3cret", "s3cret"), ({"user": "u", "password": "p"}, None)])
def test_the_default_loader_reads_a_secret_block_as_text(monkeypatch: pytest.MonkeyPatch, stored: object, expected: str | None) -> None:
    from prefect.blocks.system import Secret

    loads: list[tuple[str, object]] = []

    def load(name: str, **options: object) -> Secret:
        loads.append((name, options.get("_sync")))
        return Secret(value=stored)

    monkeypatch.setattr(Secret, "load", load)
    secret = PrefectSecretStr("sf-client-secret", PrefectSecretResolver())

    if expected is None:
        with pytest.raises(SecretReferenceError, match="does not hold text"):
            secret.get_secret_value()
    else:
        assert secret.get_secret_value() == expected
    assert loads == [("sf-client-secret", True)]  # forced sync: also callable from async flows
