"""Which name a request used: the org's My Domain or the generic login host (apis.md, controls).

Salesforce tells them apart by host name; so does the emulator, from the `Host` header. A host ending
in `.my.salesforce.com`, or equal to the configured `my_domain_host`, is the My Domain. With no
configured one, `localhost[:port]` is the My Domain and `127.0.0.1[:port]` the login host: one
server, two names.

    hosts = resolve_hosts("127.0.0.1:8001", "http", options)
    hosts.instance_url   # 'http://localhost:8001'
"""

from __future__ import annotations

from dataclasses import dataclass

from presence_sync.emulators.salesforce.options import Environment, SalesforceEmulatorOptions

CANONICAL_LOGIN_HOSTS: dict[Environment, str] = {
    "production": "login.salesforce.com",
    "sandbox": "test.salesforce.com",
}
# The My Domain the seeded org answers to when reached by its public-looking names.
DEFAULT_MY_DOMAINS: dict[Environment, str] = {
    "production": "presence-demo.my.salesforce.com",
    "sandbox": "presence-demo--dev.sandbox.my.salesforce.com",
}
_LOOPBACK_LOGIN = "127.0.0.1"
_LOOPBACK_MY_DOMAIN = "localhost"


@dataclass(frozen=True)
class RequestHosts:
    scheme: str
    host: str
    is_my_domain: bool
    my_domain: str
    login: str
    environment: Environment

    @property
    def instance_url(self) -> str:
        return f"{self.scheme}://{self.my_domain}"

    @property
    def login_url(self) -> str:
        return f"{self.scheme}://{self.login}"

    @property
    def canonical_login_url(self) -> str:
        return f"https://{CANONICAL_LOGIN_HOSTS[self.environment]}"

    @property
    def is_other_environments_login_host(self) -> bool:
        """A sandbox reached through login.salesforce.com, or production through test.salesforce.com."""
        name = self.host.split(":", 1)[0]
        return any(name == h for env, h in CANONICAL_LOGIN_HOSTS.items() if env != self.environment)


def _split(host: str) -> tuple[str, str]:
    name, _, port = host.partition(":")
    return name, f":{port}" if port else ""


def resolve_hosts(host_header: str | None, scheme: str, options: SalesforceEmulatorOptions) -> RequestHosts:
    host = (host_header or CANONICAL_LOGIN_HOSTS[options.environment]).lower()
    name, port = _split(host)
    configured = options.my_domain_host.lower() if options.my_domain_host else None
    if configured is not None:
        is_my_domain = host == configured or name.endswith(".my.salesforce.com")
        my_domain = configured
    else:
        is_my_domain = name == _LOOPBACK_MY_DOMAIN or name.endswith(".my.salesforce.com")
        if name in (_LOOPBACK_MY_DOMAIN, _LOOPBACK_LOGIN):
            my_domain = f"{_LOOPBACK_MY_DOMAIN}{port}"
        elif name.endswith(".my.salesforce.com"):
            my_domain = host
        else:
            my_domain = DEFAULT_MY_DOMAINS[options.environment]
    if not is_my_domain:
        login = host
    elif name == _LOOPBACK_MY_DOMAIN:
        login = f"{_LOOPBACK_LOGIN}{port}"
    else:
        login = CANONICAL_LOGIN_HOSTS[options.environment]
    return RequestHosts(scheme, host, is_my_domain, my_domain, login, options.environment)
