"""Secret values in the config: `${ENV_VAR}` references and Prefect Secret blocks.

- `${NAME}` anywhere in a string value is replaced from the environment when the config is loaded
  (`$${` writes a literal `${`). A missing variable is a config problem naming it and the path.
- `prefect-secret:<block-name>` as a whole secret value is a `PrefectSecretStr`: a `SecretStr` whose
  value is read from that Prefect Secret block on first use, once per block, through a
  `PrefectSecretResolver` (injectable; the default one imports prefect only when it is used).
- Anything else is a literal secret. Fine for a local try-out; committed files should use references.

Secret values never appear in reprs, error texts or JSON dumps.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, PlainSerializer, SecretStr, ValidationInfo

from presence_sync.models.errors import ConfigProblem, Loc, SecretReferenceError, config_problem, config_problems, format_path

PREFECT_SECRET_PREFIX = "prefect-secret:"
SECRET_RESOLVER_CONTEXT_KEY = "secret_resolver"

_BLOCK_NAME = re.compile(r"^[a-z0-9-]+$")
_ENV_REFERENCE = re.compile(r"(\$?)\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

BlockLoader = Callable[[str], str]


class _BlockNotText(Exception):
    """A Prefect Secret block holds structured data where a config secret needs text."""


def load_prefect_secret_block(block_name: str) -> str:
    """Read one Prefect Secret block's text (one API call). The only place that imports prefect."""
    from prefect.blocks.system import Secret

    value = Secret.load(block_name, _sync=True).value.get_secret_value()
    if not isinstance(value, str):
        raise _BlockNotText(block_name)
    return value


class PrefectSecretResolver:
    """Loads Prefect Secret blocks on first use and remembers them: one API call per block.

    Example:
        resolver = PrefectSecretResolver(load_block=lambda name: {"sf-secret": "s3cr3t"}[name])
        config = load_config("contact-center.yaml", secret_resolver=resolver)
    """

    def __init__(self, load_block: BlockLoader = load_prefect_secret_block) -> None:
        self._load_block = load_block
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()

    def resolve(self, block_name: str, *, config_path: str = "") -> str:
        """The block's value; raises `SecretReferenceError` naming the block and what to do."""
        with self._lock:
            if block_name not in self._values:
                self._values[block_name] = self._load(block_name, config_path)
            return self._values[block_name]

    def forget(self) -> None:
        """Drop remembered values, e.g. after a block was rotated."""
        with self._lock:
            self._values.clear()

    def _load(self, block_name: str, config_path: str) -> str:
        try:
            value = self._load_block(block_name)
        except Exception as error:  # any failure of a block load is reported the same way
            raise SecretReferenceError([_unresolvable(block_name, config_path, error)]) from None
        if not value:
            raise SecretReferenceError(
                [
                    ConfigProblem(
                        config_path,
                        f"Prefect Secret block '{block_name}' is empty",
                        "store the secret's value in it",
                    ),
                ]
            )
        return value


_default_resolver = PrefectSecretResolver()


def default_secret_resolver() -> PrefectSecretResolver:
    """The process-wide resolver used when none was injected at load."""
    return _default_resolver


class PrefectSecretStr(SecretStr):
    """A `SecretStr` kept in a Prefect Secret block, read through its resolver on first use.

    Example:
        secret = PrefectSecretStr("sf-client-secret")
        secret.get_secret_value()   # loads the block once, then answers from memory
    """

    def __init__(self, block_name: str, resolver: PrefectSecretResolver | None = None) -> None:
        super().__init__("")
        self.block_name = block_name
        self.config_path = ""
        self._resolver = resolver

    def get_secret_value(self) -> str:
        resolver = self._resolver or default_secret_resolver()
        return resolver.resolve(self.block_name, config_path=self.config_path)

    @property
    def reference(self) -> str:
        """The reference as written in the config, e.g. `prefect-secret:sf-client-secret`."""
        return f"{PREFECT_SECRET_PREFIX}{self.block_name}"

    def _display(self) -> str:
        return "**********"

    def __repr__(self) -> str:
        return f"PrefectSecretStr({self.reference!r})"

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self.get_secret_value())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrefectSecretStr) and other.block_name == self.block_name

    def __hash__(self) -> int:
        return hash((PREFECT_SECRET_PREFIX, self.block_name))

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickles (e.g. Prefect hashing task inputs) carry the reference, never a resolved value.
        return (PrefectSecretStr, (self.block_name,))


def _parse_secret(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, (bool, int, float)):
        raise config_problem(
            "must be text",
            "put the value in quotes; YAML reads bare digits as a number and may change them",
        )
    if not isinstance(value, str):
        raise config_problem(
            "must be text",
            "write the secret as a `${ENV_VAR}` or `prefect-secret:<block>` reference",
        )
    if value.startswith(PREFECT_SECRET_PREFIX):
        block_name = value.removeprefix(PREFECT_SECRET_PREFIX).strip()
        if not _BLOCK_NAME.match(block_name):
            raise config_problem(
                f"'{PREFECT_SECRET_PREFIX}' must be followed by a Prefect block name",
                "use the Secret block's name: lowercase letters, digits and dashes, e.g. prefect-secret:sf-client-secret",
            )
        resolver = (info.context or {}).get(SECRET_RESOLVER_CONTEXT_KEY)
        return PrefectSecretStr(block_name, resolver)
    if not value:
        raise config_problem(
            "is empty",
            "set the secret (a `${ENV_VAR}` reference) or remove the key if it is optional",
        )
    return SecretStr(value)


def _dump_secret(value: SecretStr) -> str:
    return value.reference if isinstance(value, PrefectSecretStr) else str(value)


SecretValue = Annotated[SecretStr, BeforeValidator(_parse_secret), PlainSerializer(_dump_secret)]
"""A config secret: a literal, an expanded `${ENV_VAR}`, or a lazy `prefect-secret:<block>`."""


def expand_env_references(data: Any, environ: Mapping[str, str]) -> Any:
    """Replace `${NAME}` in every string of a parsed config; raises `config_problems` for all missing names."""
    problems: list[tuple[Loc, str, str]] = []
    expanded = _expand(data, (), environ, problems)
    if problems:
        raise config_problems(*problems)
    return expanded


def _expand(value: Any, loc: Loc, environ: Mapping[str, str], problems: list[tuple[Loc, str, str]]) -> Any:
    if isinstance(value, dict):
        return {key: _expand(item, loc + (str(key),), environ, problems) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, loc + (index,), environ, problems) for index, item in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        if not _ENV_NAME.match(name):
            problems.append((loc, "has a '${...}' that is not a valid environment reference",
                             "write ${NAME} with letters, digits and underscores, or $${ for a literal ${"))
            return ""
        if name not in environ:
            problems.append((loc, f"environment variable {name} is not set",
                             f"export {name} in the environment that runs presence-sync"))
            return ""
        if not environ[name]:
            problems.append((loc, f"environment variable {name} is empty", f"give {name} a value"))
        return environ[name]

    return _ENV_REFERENCE.sub(substitute, value)


def iter_secrets(model: BaseModel, loc: Loc = ()) -> Iterator[tuple[Loc, SecretStr]]:
    """Every secret in a model tree with its loc, e.g. `(("salesforce", "auth", "password"), SecretStr)`."""
    for name in type(model).model_fields:
        yield from _secrets_in(getattr(model, name), loc + (name,))


def _secrets_in(value: Any, loc: Loc) -> Iterator[tuple[Loc, SecretStr]]:
    if isinstance(value, SecretStr):
        yield loc, value
    elif isinstance(value, BaseModel):
        yield from iter_secrets(value, loc)
    elif isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            yield from _secrets_in(item, loc + (index,))


def label_secret_references(model: BaseModel) -> None:
    """Tell each `PrefectSecretStr` in the tree its config path, for error messages."""
    for loc, secret in iter_secrets(model):
        if isinstance(secret, PrefectSecretStr):
            secret.config_path = format_path(loc)


def preload_prefect_secrets(model: BaseModel) -> None:
    """Resolve every `prefect-secret:` reference now (e.g. at the start of a flow run).

    Raises one `SecretReferenceError` listing every block that could not be loaded.
    """
    problems: list[ConfigProblem] = []
    for _, secret in iter_secrets(model):
        if isinstance(secret, PrefectSecretStr):
            try:
                secret.get_secret_value()
            except SecretReferenceError as error:
                problems.extend(error.problems)
    if problems:
        raise SecretReferenceError(problems)


def _unresolvable(block_name: str, config_path: str, error: Exception) -> ConfigProblem:
    # Only the exception's type is shown: a block's validation error could quote the stored value.
    if isinstance(error, ValueError) and "Unable to find block document" in str(error):
        return ConfigProblem(
            config_path,
            f"Prefect Secret block '{block_name}' does not exist",
            f"create it (Prefect UI: Blocks -> Secret, named {block_name}) or fix the name",
        )
    if isinstance(error, _BlockNotText):
        return ConfigProblem(
            config_path,
            f"Prefect Secret block '{block_name}' does not hold text",
            "store the secret as a plain string",
        )
    return ConfigProblem(
        config_path,
        f"could not load Prefect Secret block '{block_name}' ({type(error).__name__})",
        "check that the Prefect API is reachable (PREFECT_API_URL) and the block exists",
    )
