"""A polling loop's sleep: woken early, and always stoppable."""

import asyncio

from relance.common.notify import wait_until_woken


async def test_a_wake_ends_the_sleep_before_its_time():
    wake = asyncio.Event()
    sleeper = asyncio.create_task(wait_until_woken(wake, 60))
    await asyncio.sleep(0)
    wake.set()
    await asyncio.wait_for(sleeper, 1)
    assert sleeper.done()
    assert not sleeper.cancelled()


async def test_the_sleep_ends_after_its_time_without_a_wake():
    wake = asyncio.Event()
    await asyncio.wait_for(wait_until_woken(wake, 0.01), 1)
    assert not wake.is_set()


async def test_a_stop_that_comes_with_a_wake_still_stops():
    # asyncio.wait_for on Python 3.11 swallowed this cancellation: the relay ran on forever
    for _ in range(50):
        wake = asyncio.Event()
        sleeper = asyncio.create_task(wait_until_woken(wake, 60))
        await asyncio.sleep(0)
        wake.set()
        sleeper.cancel()
        await asyncio.wait({sleeper}, timeout=1)
        assert sleeper.cancelled()
