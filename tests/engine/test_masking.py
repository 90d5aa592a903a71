"""Secrets in deployment logs: hidden in every form they are printed in, and across the cuts of
lines too long to store whole — through the real log buffer and, for the cut, a real process whose
output goes through the runtime's line splitter."""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from shoal.core.clock import FakeClock
from shoal.domain.logs import LogLine
from shoal.engine.logbuffer import LogBuffer
from shoal.runtime.local.process import MAX_LINE_BYTES, spawn
from tests.runtime.aio import run_async

MAX_LINE = 64 * 1024  # what shoal stores per line
SECRET = "s3cr3t-Pa55word/with+odd=chars"


class Store(list[LogLine]):
    def __call__(self, lines: list[LogLine]) -> None:
        self.extend(lines)

    def text(self) -> str:
        return "\n".join(line.line for line in self)


def buffer() -> tuple[LogBuffer, Store]:
    store = Store()
    logs = LogBuffer(store, FakeClock())
    logs.mask("dep", [SECRET, "ab"])  # too short to mask: ordinary text would vanish
    return logs, store


def leaks(text: str) -> list[str]:
    raw = SECRET.encode()
    found = [form for form in (SECRET, quote(SECRET, safe=""), quote_plus(SECRET), base64.b64encode(raw).decode(),
                               base64.urlsafe_b64encode(raw).decode().rstrip("=")) if form in text]
    return found


@pytest.mark.parametrize("printed", [
    f"DATABASE_URL=postgres://app:{SECRET}@db/app",
    f"GET /login?password={quote(SECRET, safe='')}&next=/",
    f"form: password={quote_plus(SECRET)}",
    f"Authorization: Basic {base64.b64encode(('user:' + SECRET).encode()).decode()}",
    f"config: {base64.b64encode(SECRET.encode()).decode()}",
    f"jwt-ish: {base64.urlsafe_b64encode(('x' + SECRET + 'yz').encode()).decode().rstrip('=')}",
    "env dump " + base64.b64encode(('{"KEY": "' + SECRET + '"}').encode()).decode() + " end",
])
def test_every_printed_form_of_a_secret_is_masked(printed: str) -> None:
    logs, store = buffer()
    logs.sink("dep")("RUN", "web", printed)
    logs.flush()
    assert "[secret]" in store.text() and not leaks(store.text()), store.text()
    assert base64.b64encode(SECRET.encode()).decode()[4:-4] not in store.text()


def test_short_values_and_other_deployments_are_left_alone() -> None:
    logs, store = buffer()
    logs.sink("dep")("RUN", "web", "abc ab cab")
    logs.sink("other")("RUN", "web", f"not this deployment's secret: {SECRET}")
    logs.flush()
    assert [line.line for line in store] == ["abc ab cab", f"not this deployment's secret: {SECRET}"]


@pytest.mark.parametrize("at", [MAX_LINE - 5, MAX_LINE - 1, MAX_LINE, 2 * MAX_LINE - 10])
def test_a_secret_cut_between_pieces_of_a_long_line_is_masked(at: int) -> None:
    logs, store = buffer()
    line = "x" * at + SECRET + "y" * 100
    sink = logs.sink("dep")
    for start in range(0, len(line), MAX_LINE):  # what a runtime cutting at the limit hands over
        piece = line[start:start + MAX_LINE]
        (sink.piece if start + MAX_LINE < len(line) else sink)("RUN", "web", piece)
    logs.flush()
    assert not leaks("".join(l.line for l in store)) and "[secret]" in "".join(l.line for l in store)
    assert all(len(l.line) <= MAX_LINE for l in store)
    assert "".join(l.line for l in store) == "x" * at + "[secret]" + "y" * 100
    assert any("[secret]" in l.line for l in store)  # the mark itself is never cut in two


def test_the_start_of_a_line_whose_end_never_comes_is_kept_masked_on_stop() -> None:
    logs, store = buffer()
    logs.sink("dep").piece("RUN", "web", "before " + SECRET)

    async def stop_now() -> None:
        stop = asyncio.Event()
        stop.set()
        await logs.run(stop)

    asyncio.run(stop_now())
    assert store.text() == "before [secret]"


def test_failure_reasons_are_masked() -> None:
    logs, _ = buffer()
    assert logs.masked("dep", f"web exited: connect to postgres://u:{SECRET}@h failed") == \
        "web exited: connect to postgres://u:[secret]@h failed"


@run_async
async def test_a_process_printing_a_secret_across_the_line_limit_has_it_masked(tmp_path: Path) -> None:
    logs, store = buffer()
    sink = logs.sink("dep")
    script = tmp_path / "print.py"
    script.write_text(f"import sys\nsys.stdout.write('x' * ({MAX_LINE_BYTES} - 7) + {SECRET!r} + 'tail\\n')\n")
    child = await spawn(f"{sys.executable} {script}", tmp_path, {}, lambda raw: sink("RUN", "web", raw.decode()),
                        lambda raw: sink.piece("RUN", "web", raw.decode()))
    await child.protocol.exited.wait()
    await child.protocol.output_closed.wait()
    logs.flush()
    joined = "".join(line.line for line in store)
    assert not leaks(joined) and joined.endswith("[secret]tail")
