"""A command's output is untrusted: hostprep keeps at most ``MAX_OUTPUT`` bytes of each stream."""

from __future__ import annotations

import asyncssh

from services.hostprep.ssh import MAX_OUTPUT, _Collected


async def test_output_past_the_cap_is_dropped_per_stream() -> None:
    session = _Collected()
    chunk = b"x" * (MAX_OUTPUT // 3 + 7)
    for _ in range(5):
        session.data_received(chunk, None)
    session.data_received(b"warning\n", asyncssh.EXTENDED_DATA_STDERR)
    assert len(session.stdout) == MAX_OUTPUT and set(session.stdout) == {ord("x")}
    assert bytes(session.stderr) == b"warning\n"  # stderr has a cap of its own
    session.connection_lost(None)
    assert session.closed.done()
