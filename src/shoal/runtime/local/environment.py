"""Process environments from a unit's variables (pure).

The plan has already layered app-level under component-level variables and split them by scope
(``RunUnit.build_env``, ``RunUnit.run_env``); here each gets its final value (``value_of``
decrypts secrets and resolves bindables) and a service's ``PORT`` is added unless the user set it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from shoal.domain.plan import EnvVar

ValueOf = Callable[[EnvVar], str]


def plain_value(var: EnvVar) -> str:
    return var.value


def values(variables: Iterable[EnvVar], value_of: ValueOf = plain_value) -> dict[str, str]:
    return {var.key: value_of(var) for var in variables}


def with_port(env: dict[str, str], port: int | None) -> dict[str, str]:
    if port is not None:
        env.setdefault("PORT", str(port))
    return env
