"""disconnect.unless_client_leaves on its own: the handler runs in the
caller's task, a departure cancels that task, and the task's cancellation
count is left as it was found, so asyncio.timeout later in the same task
still reads its own expiry. The end-to-end cases (a real upstream connection
closed, 499 recorded) are in test_faults and test_llama_e2e."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from starlette.requests import Request

from guardstack.gateway import disconnect


def _request(leave: asyncio.Event) -> Request:
    """A request whose body is read and whose client leaves when ``leave`` is set."""
    async def receive() -> dict[str, Any]:
        await leave.wait()
        return {"type": "http.disconnect"}

    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)


async def _guarded(request: Request, work: Any) -> Any:
    disconnect.watch(request)
    disconnect.body_read(request)
    return await disconnect.unless_client_leaves(request, work)


async def _timeout_still_works() -> bool:
    try:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)
    except TimeoutError:
        return True
    return False


async def test_an_answer_before_any_departure_is_returned():
    leave = asyncio.Event()

    async def work() -> str:
        await asyncio.sleep(0.01)
        return "answer"

    assert await _guarded(_request(leave), work()) == "answer"
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    leave.set()  # too late: the listener is gone and cancels nothing
    await asyncio.sleep(0.01)
    assert await _timeout_still_works()


async def test_a_departure_cancels_the_work_and_raises_client_left():
    leave = asyncio.Event()
    reached: list[str] = []

    async def work() -> str:
        try:
            leave.set()
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            reached.append("cancelled")
            raise
        return "never"

    with pytest.raises(disconnect.ClientLeft):
        await _guarded(_request(leave), work())
    assert reached == ["cancelled"]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    assert await _timeout_still_works()


async def test_work_that_swallows_the_cancel_leaves_no_count_behind():
    leave = asyncio.Event()

    async def work() -> str:
        leave.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        return "finished anyway"

    assert await _guarded(_request(leave), work()) == "finished anyway"
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    assert await _timeout_still_works()


async def _started(leave: asyncio.Event) -> asyncio.Future[Any]:
    """A guarded handler, waiting in its work."""
    started = asyncio.Event()

    async def work() -> str:
        started.set()
        await asyncio.sleep(10)
        return "never"

    task = asyncio.ensure_future(_guarded(_request(leave), work()))
    await started.wait()
    return task


async def test_the_servers_own_cancel_is_not_taken_for_a_departure():
    task = await _started(asyncio.Event())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_both_at_once_stays_a_cancellation():
    """The client leaves as the server shuts down: the server's cancel wins."""
    leave = asyncio.Event()
    task = await _started(leave)
    leave.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
