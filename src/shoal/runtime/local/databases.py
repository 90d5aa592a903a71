"""Dev databases for the local runtime: one embedded PostgreSQL per shoal instance (reference §4.8).

Role: give each ``databases[]`` entry of an app (a dev database, ``production: false``) its own
PostgreSQL database and login role on a server that listens on TCP 127.0.0.1, so apps reach it
with the ordinary ``${db.DATABASE_URL}``. It must not know about specs or deployments: the engine
asks for (app id, component name) and gets back connection facts (``DatabaseInfo``).

How the server runs. The PostgreSQL binaries come from the ``pgserver`` wheel, but not its
``get_server()``: that always starts postgres with ``-h ""`` (unix socket only) on the command
line, which no ``postgresql.conf`` setting can override. So this module runs ``initdb`` and
``pg_ctl`` itself:

- data in ``<root>/pgdata``; ``initdb --auth-local=trust --auth-host=scram-sha-256``: shoal
  administers over the unix socket as ``postgres`` (socket dir mode 0700, socket 0700), apps
  log in over TCP with their passwords, and ``postgres`` has no password so it cannot log in
  over TCP at all;
- ``-h 127.0.0.1 -p <port>``: the port is chosen once and kept in ``<root>/server.json`` so
  URLs stay stable across restarts (a new one is chosen only if it was taken meanwhile);
- as root, postgres refuses to run, so it runs as the ``pgserver`` system user, created and
  given access exactly as the pgserver package does it;
- a server already running on this data dir with the right address is adopted, not restarted,
  and ``close()`` only stops a server this object started.

Idempotence: each database and role carries the comment ``shoal:<app id>:<name>``, so the
server itself records which (app, name) owns what, and a repeated ``provision`` finds them.
Passwords are derived, HMAC-SHA256 of (app id, name) under the 32-byte key in
``<root>/databases.key`` (mode 0600), and are re-applied on every ``provision``. A password reset
(``reset_password``) bumps that database's generation in ``<root>/password-generations.json``,
which the derivation includes from then on. Databases are
isolated: CONNECT is revoked from PUBLIC on every database, each role owns only its own.
"""

from __future__ import annotations

import asyncio
import grp
import hashlib
import hmac
import importlib.util
import json
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from shoal.core.errors import Conflict, NotFound, Unavailable
from shoal.runtime.local.ports import allocate, port_is_free
from shoal.runtime.local.state import write_record

HOST = "127.0.0.1"
ADMIN_USER = "postgres"
OS_USER_WHEN_ROOT = "pgserver"  # the same system user the pgserver package creates
_RESERVED = frozenset({"postgres", "template0", "template1", "public", "none"})
_MAX_IDENTIFIER = 63
GENERATIONS = "password-generations.json"
_SOCKET_PATH_LIMIT = 100  # sun_path is 108 bytes on Linux, 104 on macOS


@dataclass(frozen=True)
class DatabaseInfo:
    """Connection facts for one dev database, ready for ``bindables.database_variables``.

    ``version_served`` is the major version actually running (e.g. ``"16"``); ``warning`` says
    so when the spec asked for another one.
    """

    host: str
    port: int
    user: str
    password: str
    database: str
    version_served: str
    engine: str = "PG"
    warning: str | None = None


@dataclass(frozen=True)
class _Server:
    pgdata: Path
    socket_dir: Path
    port: int
    os_user: str | None
    version: str  # server_version, e.g. "16.2"
    started_here: bool


class DevDatabases:
    """Dev databases of one shoal instance, on one embedded PostgreSQL started on first use."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._server: _Server | None = None
        # One lock serialises server start and all admin work: provisioning is rare and
        # serial DDL avoids two requests racing for the same database name.
        self._lock = asyncio.Lock()

    async def provision(self, app_id: str, name: str, db_name: str | None, db_user: str | None,
                        version: str | None) -> DatabaseInfo:
        """The database of (app_id, name), created on first call and unchanged afterwards."""
        password = await asyncio.to_thread(self._password, app_id, name)
        async with self._lock:
            server = await self._started()
            database, user = await asyncio.to_thread(
                _provision, server, _tag(app_id, name), db_name or name, db_user or name, app_id, password)
        major = server.version.split(".")[0]
        warning = None
        if version and version.strip().split(".")[0] != major:
            warning = (f"PostgreSQL {version} was requested; local dev databases are served by "
                       f"PostgreSQL {server.version}")
        return DatabaseInfo(host=HOST, port=server.port, user=user, password=password, database=database,
                            version_served=major, warning=warning)

    async def reset_password(self, app_id: str, name: str) -> str:
        """A new password for the role of (app_id, name), in force at once; the new one.

        The generation is recorded before the role is altered: after a crash in between, the next
        ``provision`` applies the new password anyway."""
        async with self._lock:
            tag = _tag(app_id, name)
            generations = self._generations()
            generations[tag] = generations.get(tag, 0) + 1
            await asyncio.to_thread(write_record, self._root / GENERATIONS, generations)
            password = await asyncio.to_thread(self._password, app_id, name)
            server = await self._started()
            if not await asyncio.to_thread(_set_password, server, tag, password):
                raise NotFound(f"database {name} of app {app_id} has not been created yet (no deployment "
                               "provisioned it)")
        return password

    async def drop_app(self, app_id: str) -> None:
        """Drop every dev database of ``app_id``."""
        prefix = _tag(app_id, "")
        await self._drop_where(lambda found: found.startswith(prefix))
        generations = self._generations()
        if any(tag.startswith(prefix) for tag in generations):
            kept = {tag: n for tag, n in generations.items() if not tag.startswith(prefix)}
            await asyncio.to_thread(write_record, self._root / GENERATIONS, kept)

    async def close(self) -> None:
        """Stop the server if this object started it; data stays for the next start."""
        async with self._lock:
            server, self._server = self._server, None
            if server is not None and server.started_here:
                await asyncio.to_thread(_pg_ctl, server, ["-m", "fast", "stop"])

    async def _drop_where(self, matches: Callable[[str], bool]) -> None:
        async with self._lock:
            if self._server is None and not (self._root / "pgdata" / "PG_VERSION").exists():
                return  # nothing was ever provisioned here: no need to start a server
            server = await self._started()
            await asyncio.to_thread(_drop, server, matches)

    async def _started(self) -> _Server:
        if self._server is None:
            self._server = await asyncio.to_thread(_start, self._root)
        return self._server

    def _password(self, app_id: str, name: str) -> str:
        key_file = self._root / "databases.key"
        if not key_file.exists():
            self._root.mkdir(parents=True, exist_ok=True)
            try:
                # O_EXCL: two instances racing on a fresh root both end up with the same key.
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(os.urandom(32))
            except FileExistsError:
                pass
        key = key_file.read_bytes()
        generation = self._generations().get(_tag(app_id, name), 0)
        # Generation 0 derives what shoal always derived, so a reset is the only thing that changes a password.
        message = f"{app_id}\x00{name}" + (f"\x00{generation}" if generation else "")
        return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:32]

    def _generations(self) -> dict[str, int]:
        """How many times each database's password was reset (``reset_password``)."""
        try:
            found = json.loads((self._root / GENERATIONS).read_text())
        except FileNotFoundError:
            return {}
        return {str(tag): int(n) for tag, n in found.items()}


def _tag(app_id: str, name: str) -> str:
    return f"shoal:{app_id}:{name}"


# --- the server -------------------------------------------------------------------------------


def _start(root: Path) -> _Server:
    """Initialise (once) and start the server on our TCP port, or adopt the one already running."""
    root.mkdir(parents=True, exist_ok=True)
    pgdata = root / "pgdata"
    os_user = _prepare_os_user(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(pgdata, os_user)
    port = _stored_port(root)
    socket_dir = _socket_dir(pgdata, os_user)
    running = _running(pgdata)
    server = _Server(pgdata, socket_dir, port, os_user, "", started_here=False)
    if running is not None and running != (port, HOST):
        _pg_ctl(server, ["-m", "fast", "stop"])  # e.g. started by pgserver.get_server(): no TCP
        running = None
    if running is None:
        if not port_is_free(port):
            port = allocate(None, set())
            (root / "server.json").write_text(json.dumps({"port": port}))
        server = _Server(pgdata, socket_dir, port, os_user, "", started_here=True)
        options = (f"-h {HOST} -p {port} -k {shlex.quote(str(socket_dir))} "
                   "-c unix_socket_permissions=0700")
        _pg_ctl(server, ["-l", str(pgdata / "log"), "-o", options, "start"])
    with _admin(server) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        version = str(row[0]).split()[0] if row else "unknown"
        # Every login may CONNECT to these by default; dev database users have no business there.
        conn.execute("REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC")
    return _Server(pgdata, socket_dir, port, os_user, version, server.started_here)


def _bin(program: str) -> str:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise Unavailable("dev databases need the pgserver package (pip install pgserver)")
    return str(Path(spec.origin).parent / "pginstall" / "bin" / program)


def _prepare_os_user(pgdata: Path) -> str | None:
    """The system user postgres runs as: ourselves, or ``pgserver`` when we are root."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        from pgserver import utils
    utils.ensure_user_exists(OS_USER_WHEN_ROOT)
    binaries = Path(_bin("postgres")).parent
    utils.ensure_prefix_permissions(binaries)
    utils.ensure_folder_permissions(binaries, 0o055)
    utils.ensure_folder_permissions(binaries.parent / "lib", 0o044)
    pgdata.mkdir(mode=0o700, exist_ok=True)
    _reachable_by_postgres(pgdata, grp.getgrgid(pwd.getpwnam(OS_USER_WHEN_ROOT).pw_gid).gr_gid)
    shutil.chown(pgdata, OS_USER_WHEN_ROOT, OS_USER_WHEN_ROOT)
    return OS_USER_WHEN_ROOT


def _reachable_by_postgres(pgdata: Path, gid: int) -> None:
    """Let the ``pgserver`` user reach ``pgdata`` and nobody else see more than before: the two
    folders of shoal's own above it (this module's root, and the data dir holding it), unless
    others may search them already, get the ``pgserver`` group with search only (0710), so an
    app's user still cannot enter the data dir; folders further up only gain o+x where they lack it
    (pgserver's own helper would make every one of them readable by all)."""
    own = (pgdata.parent, pgdata.parent.parent)
    for parent in pgdata.parents:
        mode = stat.S_IMODE(parent.stat().st_mode)
        if mode & stat.S_IXOTH:
            continue
        if parent in own:
            os.chown(parent, -1, gid)
            os.chmod(parent, (mode | stat.S_IXGRP) & ~(stat.S_IRGRP | stat.S_IWGRP))
        else:
            os.chmod(parent, mode | stat.S_IXOTH)


def _initdb(pgdata: Path, os_user: str | None) -> None:
    if pgdata.exists() and any(pgdata.iterdir()):
        # A previous initdb died half-way (no PG_VERSION yet): start again from nothing.
        for child in pgdata.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    pgdata.mkdir(mode=0o700, exist_ok=True)
    _run([_bin("initdb"), "-D", str(pgdata), "-U", ADMIN_USER, "--encoding=UTF8",
          "--auth-local=trust", "--auth-host=scram-sha-256"], os_user)


def _stored_port(root: Path) -> int:
    state = root / "server.json"
    if state.exists():
        return int(json.loads(state.read_text())["port"])
    port = allocate(None, set())
    state.write_text(json.dumps({"port": port}))
    return port


def _socket_dir(pgdata: Path, os_user: str | None) -> Path:
    """``pgdata`` itself, unless its path is too long for a unix socket name."""
    if len(str(pgdata / ".s.PGSQL.65535")) <= _SOCKET_PATH_LIMIT:
        return pgdata
    digest = hashlib.sha256(str(pgdata.resolve()).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"shoal-pg-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    if os_user is not None:
        shutil.chown(short, os_user, os_user)
    return short


def _running(pgdata: Path) -> tuple[int, str] | None:
    """(port, listen address) of a live server on ``pgdata``, from its ``postmaster.pid``."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port, address = int(lines[0]), int(lines[3]), lines[5].strip()
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None  # no file, a stale one, or one being written: pg_ctl start sorts those out
    return port, address


def _pg_ctl(server: _Server, args: list[str]) -> None:
    _run([_bin("pg_ctl"), "-D", str(server.pgdata), "-w", "-t", "60", *args], server.os_user)


def _run(command: list[str], os_user: str | None) -> None:
    # Output goes to a temporary file, not a pipe: pg_ctl's postmaster inherits the pipe and
    # would keep ``communicate()`` waiting forever (the pgserver package hit the same).
    with tempfile.TemporaryFile("w+") as output:
        # The user's own group too, and no supplementary ones: without group= a process keeps root's gid.
        as_user: dict[str, Any] = {} if os_user is None else {"user": os_user, "group": os_user, "extra_groups": []}
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, timeout=120, cwd="/", check=False,
                              **as_user)
        if done.returncode != 0:
            output.seek(0)
            raise Unavailable(f"dev database server: {Path(command[0]).name} failed: {output.read()[-2000:]}")


def _admin(server: _Server, dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(host=str(server.socket_dir), port=server.port, user=ADMIN_USER, dbname=dbname,
                           autocommit=True, connect_timeout=10)


# --- databases and roles ----------------------------------------------------------------------


def _provision(server: _Server, tag: str, db_base: str, user_base: str, app_id: str,
               password: str) -> tuple[str, str]:
    """Ensure the role and database tagged ``tag`` exist as they should; their (database, user)."""
    with _admin(server) as conn:
        user = _tagged(conn, "pg_roles", "rolname", "pg_authid", tag)
        if user is None:
            user = _free_name(conn, "pg_roles", "rolname", user_base, app_id, tag)
            with conn.transaction():  # role and its tag together, so a crash leaves no orphan
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(user)))
                conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(user), sql.Literal(tag)))
        conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(password)))
        database = _tagged(conn, "pg_database", "datname", "pg_database", tag)
        if database is None:
            database = _free_name(conn, "pg_database", "datname", db_base, app_id, tag)
            # CREATE DATABASE cannot run in a transaction: the comment follows at once.
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(user)))
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(database), sql.Literal(tag)))
        ident_db, ident_user = sql.Identifier(database), sql.Identifier(user)
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident_db, ident_user))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident_db))
        conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(ident_db, ident_user))
    return database, user


def _set_password(server: _Server, tag: str, password: str) -> bool:
    with _admin(server) as conn:
        user = _tagged(conn, "pg_roles", "rolname", "pg_authid", tag)
        if user is None:
            return False
        conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))
    return True


def _drop(server: _Server, matches: Callable[[str], bool]) -> None:
    with _admin(server) as conn:
        databases = [name for name, tag in conn.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database").fetchall()
            if tag and matches(tag)]
        roles = [name for name, tag in conn.execute(
            "SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles").fetchall()
            if tag and matches(tag)]
        for database in databases:
            # WITH (FORCE) terminates the database's sessions itself (PostgreSQL 13+).
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        for role in roles:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _tagged(conn: psycopg.Connection[Any], table: str, column: str, catalog: str, tag: str) -> str | None:
    query = sql.SQL("SELECT {} FROM {} WHERE shobj_description(oid, {}) = %s ORDER BY oid LIMIT 1").format(
        sql.Identifier(column), sql.Identifier(table), sql.Literal(catalog))
    row = conn.execute(query, [tag]).fetchone()
    return None if row is None else str(row[0])


def _free_name(conn: psycopg.Connection[Any], table: str, column: str, base: str, app_id: str, tag: str) -> str:
    """``base`` as a PostgreSQL name if no one has it, else with a suffix unique to the app, then to the tag.

    The spec's name is honoured when possible (it is what the user asked for); the server is
    shared by all apps, so a second app asking for the same name gets a suffixed one.
    """
    name = identifier(base)
    candidates = [name, f"{name[:54]}_{_short_hash(app_id)}", f"{name[:54]}_{_short_hash(tag)}"]
    query = sql.SQL("SELECT 1 FROM {} WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(column))
    for candidate in candidates:
        if candidate not in _RESERVED and conn.execute(query, [candidate]).fetchone() is None:
            return candidate
    raise Conflict(f"no free database name for {tag!r}: {', '.join(candidates)} are all taken")


def identifier(text: str) -> str:
    """A lower-case PostgreSQL identifier from a spec name (letters, digits, ``_``; at most 63)."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "db"
    if not name[0].isalpha() or name.startswith("pg_"):
        name = f"db_{name}"  # names may not start with a digit; pg_ is reserved for roles
    return name[:_MAX_IDENTIFIER]


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]
