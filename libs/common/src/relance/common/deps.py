"""FastAPI dependencies that every service's routes use: its runtime and a unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.service import Runtime


def runtime_of(request: Request) -> Runtime[Any]:
    """The runtime, for a dependency or route that has the request anyway: each dependency
    costs FastAPI a resolution per request, even one it has cached."""
    found: Runtime[Any] = request.app.state.runtime
    return found


async def runtime(request: Request) -> Runtime[Any]:
    # async, as every dependency here: FastAPI runs a plain function in a worker thread
    return runtime_of(request)


RuntimeDep = Annotated[Runtime[Any], Depends(runtime)]


async def session(rt: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    async with rt.database.transaction() as s:
        yield s


# ``scope="function"`` closes the transaction as soon as the route returns, before FastAPI
# sends the answer: a 2xx leaves only once the commit succeeded, and a commit that fails
# becomes the error answer (see ``relance.common.errors``). With the default scope FastAPI
# would send the answer first and commit afterwards, so a quick client could read a write
# that was not there yet, or hold a 2xx for a write that was then lost.
SessionDep = Annotated[AsyncSession, Depends(session, scope="function")]
