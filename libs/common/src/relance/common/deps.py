"""FastAPI dependencies that every service's routes use: its runtime and a unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.service import Runtime


async def runtime(request: Request) -> Runtime:
    # async, as every dependency here: FastAPI runs a plain function in a worker thread
    found: Runtime = request.app.state.runtime
    return found


RuntimeDep = Annotated[Runtime, Depends(runtime)]


async def session(rt: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    async with rt.database.transaction() as s:
        yield s


SessionDep = Annotated[AsyncSession, Depends(session)]
