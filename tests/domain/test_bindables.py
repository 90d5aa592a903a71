"""Bindable variables: resolution rules of reference §5.2 and the per-kind variable dicts."""

from __future__ import annotations

import pytest

from shoal.domain.bindables import (
    BindContext,
    database_variables,
    join_url,
    resolve,
    routed_variables,
    service_variables,
    worker_variables,
)

APP = {"APP_URL": "https://shop.example.com", "APP_DOMAIN": "shop.example.com", "APP_ID": "app-1"}


@pytest.fixture
def ctx() -> BindContext:
    return BindContext(
        app=APP,
        components={
            "api": service_variables("api", 8080, [], "https://shop.example.com", "/api", "abc123", "127.0.0.1", 41234),
            "web": routed_variables("https://shop.example.com", "/", "def456"),
        },
        databases={
            "db": database_variables("127.0.0.1", 5432, "shop", "p@ss", "shopdb"),
            "db.pool": database_variables("127.0.0.1", 5432, "shop", "p@ss", "pool"),
        },
    )


def test_app_variables(ctx: BindContext) -> None:
    assert resolve("${APP_URL}/cb?id=${APP_ID}", ctx, None) == "https://shop.example.com/cb?id=app-1"
    assert resolve("${APP_DOMAIN}", ctx, "api", build_time=True) == "shop.example.com"


@pytest.mark.parametrize("value", ["${HOME}/bin", "${PORT}", "$PATH", "${APP_UNKNOWN}", "${}", "${ APP_URL }"])
def test_shell_style_and_unknown_single_names_stay_verbatim(ctx: BindContext, value: str) -> None:
    assert resolve(value, ctx, "api") == value


def test_app_variable_missing_from_context_stays_verbatim() -> None:
    assert resolve("${APP_URL}", BindContext(), None) == "${APP_URL}"


def test_self_reads_the_current_component(ctx: BindContext) -> None:
    assert resolve("${_self.PRIVATE_URL}", ctx, "api") == "http://127.0.0.1:41234"
    assert resolve("${_self.COMMIT_HASH}", ctx, "web") == "def456"


def test_self_without_a_component_stays_verbatim(ctx: BindContext) -> None:
    assert resolve("${_self.PRIVATE_URL}", ctx, None) == "${_self.PRIVATE_URL}"
    assert resolve("${_self.PRIVATE_URL}", ctx, "nope") == "${_self.PRIVATE_URL}"


def test_named_component_variables(ctx: BindContext) -> None:
    assert resolve("${api.PUBLIC_URL}", ctx, "web") == "https://shop.example.com/api"
    assert resolve("${api.PRIVATE_DOMAIN}:${api.PRIVATE_PORT}", ctx, "web") == "127.0.0.1:41234"
    assert resolve("${web.PUBLIC_ROUTE_PATH}", ctx, "api") == "/"


def test_component_variables_are_available_at_build_time(ctx: BindContext) -> None:
    assert resolve("${api.PUBLIC_URL}", ctx, "web", build_time=True) == "https://shop.example.com/api"


def test_database_variables_at_run_time(ctx: BindContext) -> None:
    assert resolve("${db.DATABASE_URL}", ctx, "api") == "postgresql://shop:p%40ss@127.0.0.1:5432/shopdb"
    assert resolve("${db.USERNAME}/${db.PASSWORD}", ctx, None) == "shop/p@ss"


def test_database_variables_are_not_available_at_build_time(ctx: BindContext) -> None:
    value = "url=${db.DATABASE_URL} app=${APP_ID}"
    assert resolve(value, ctx, "api", build_time=True) == "url=${db.DATABASE_URL} app=app-1"


def test_connection_pool_variables(ctx: BindContext) -> None:
    assert resolve("${db.pool.DATABASE}", ctx, "api") == "pool"
    assert resolve("${db.pool.DATABASE}", ctx, "api", build_time=True) == "${db.pool.DATABASE}"
    assert resolve("${db.other.DATABASE}", ctx, "api") == "${db.other.DATABASE}"


@pytest.mark.parametrize("value", [
    "${missing.PRIVATE_URL}", "${api.NOT_A_VAR}", "${db.NOPE}", "${api.x.y}", "${_self.a.b}", "${a.b.c.d}",
])
def test_unresolvable_references_stay_exactly_as_written(ctx: BindContext, value: str) -> None:
    assert resolve(f"pre {value} post", ctx, "api") == f"pre {value} post"


def test_resolution_is_single_pass() -> None:
    ctx = BindContext(app={"APP_ID": "${APP_URL}", "APP_URL": "u"})
    assert resolve("${APP_ID}", ctx, None) == "${APP_URL}"


def test_values_without_references_are_untouched(ctx: BindContext) -> None:
    assert resolve("plain $ value {x}", ctx, "api") == "plain $ value {x}"


def test_service_variables_shape() -> None:
    assert service_variables("api", 8080, [9000], "https://a.test/", "/v1/", "c0ffee", "api.internal", 41000) == {
        "PRIVATE_DOMAIN": "api.internal", "PRIVATE_PORT": "41000", "PRIVATE_URL": "http://api.internal:41000",
        "PUBLIC_ROUTE_PATH": "/v1/", "PUBLIC_URL": "https://a.test/v1", "COMMIT_HASH": "c0ffee",
    }


def test_service_private_port_falls_back_to_http_then_internal_port() -> None:
    assert service_variables("a", 8080, [9000], None, None, None, "h", None)["PRIVATE_PORT"] == "8080"
    assert service_variables("a", None, [9000, 9001], None, None, None, "h", None)["PRIVATE_URL"] == "http://h:9000"
    assert service_variables("a", None, [], None, None, None, "h", None) == {"PRIVATE_DOMAIN": "h"}


def test_internal_service_has_no_public_variables() -> None:
    variables = service_variables("a", 8080, [], None, None, None, "::1", None)
    assert variables == {"PRIVATE_DOMAIN": "::1", "PRIVATE_PORT": "8080", "PRIVATE_URL": "http://[::1]:8080"}


def test_worker_and_routed_variables() -> None:
    assert worker_variables("abc") == {"COMMIT_HASH": "abc"}
    assert worker_variables(None) == {}
    assert routed_variables("https://a.test", "/", None) == {"PUBLIC_ROUTE_PATH": "/", "PUBLIC_URL": "https://a.test"}


@pytest.mark.parametrize(("base", "path", "url"), [
    ("https://a.test", None, "https://a.test"), ("https://a.test/", "/", "https://a.test"),
    ("https://a.test", "/x", "https://a.test/x"), ("https://a.test/", "x/y/", "https://a.test/x/y"),
])
def test_join_url(base: str, path: str | None, url: str) -> None:
    assert join_url(base, path) == url


def test_postgres_database_variables_encode_credentials() -> None:
    variables = database_variables("127.0.0.1", 5433, "us er", "p@ss:w/rd", "app db")
    assert variables == {
        "HOSTNAME": "127.0.0.1", "PORT": "5433", "USERNAME": "us er", "PASSWORD": "p@ss:w/rd", "DATABASE": "app db",
        "CA_CERT": "",
        "DATABASE_URL": "postgresql://us%20er:p%40ss%3Aw%2Frd@127.0.0.1:5433/app%20db",
        "JDBC_DATABASE_URL": "jdbc:postgresql://127.0.0.1:5433/app%20db?user=us+er&password=p%40ss%3Aw%2Frd",
    }


def test_mysql_database_variables() -> None:
    variables = database_variables("h", 3306, "u", "p", "d", engine="MYSQL")
    assert variables["DATABASE_URL"] == "mysql://u:p@h:3306/d"
    assert variables["JDBC_DATABASE_URL"] == "jdbc:mysql://h:3306/d?user=u&password=p"
    assert "REDIS_URL" not in variables


@pytest.mark.parametrize("engine", ["REDIS", "VALKEY", "valkey"])
def test_redis_database_variables(engine: str) -> None:
    variables = database_variables("h", 6379, "default", "p/w", "", engine=engine)
    assert variables["REDIS_URL"] == variables["DATABASE_URL"] == "redis://default:p%2Fw@h:6379"
    assert "JDBC_DATABASE_URL" not in variables


def test_other_engines_get_plain_fields() -> None:
    assert database_variables("h", 27017, "u", "p", "d", engine="MONGODB")["DATABASE_URL"] == "mongodb://u:p@h:27017/d"
    kafka = database_variables("h", 9092, "u", "p", "", engine="KAFKA")
    assert "DATABASE_URL" not in kafka and kafka["HOSTNAME"] == "h"
    assert database_variables("h", 1, "u", "p", "d", engine="UNSET")["DATABASE_URL"].startswith("postgresql://")
