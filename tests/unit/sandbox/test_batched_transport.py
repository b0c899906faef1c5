"""The SSH hosts' batched transport: the same bytes in the same order, fewer writes, nothing lost at close."""

from __future__ import annotations

import asyncio
from typing import Any

from sandbox.hosts.server import _BatchedTransport


class _Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.calls.append(("abort", None))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return f"info:{name}"


async def _next_turn() -> None:
    await asyncio.sleep(0)


async def test_one_turns_writes_leave_in_one_write_in_order() -> None:
    real = _Recorder()
    batched = _BatchedTransport(real)
    batched.write(b"a")
    batched.write(bytearray(b"b"))
    batched.write(b"c")
    assert real.calls == []
    await _next_turn()
    assert real.calls == [("write", b"abc")]
    batched.write(b"d")
    await _next_turn()
    await _next_turn()
    assert real.calls == [("write", b"abc"), ("write", b"d")]
    assert batched.get_extra_info("peername") == "info:peername"


async def test_close_and_abort_send_what_was_written_first() -> None:
    real = _Recorder()
    batched = _BatchedTransport(real)
    batched.write(b"exit-status")
    batched.close()
    await _next_turn()
    assert real.calls == [("write", b"exit-status"), ("close", None)]

    real = _Recorder()
    batched = _BatchedTransport(real)
    batched.write(b"last")
    batched.abort()
    await _next_turn()
    assert real.calls == [("write", b"last"), ("abort", None)]
