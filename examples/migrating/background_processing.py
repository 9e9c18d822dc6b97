"""From nventive BackgroundProcessing (001): commands, handlers built with their
dependencies, a dispatcher, a processor decorator and the polling protocol.

Run: ``python -m examples.migrating.background_processing``
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel

from offload import App, Depends, JobContext, Middleware
from offload.testing import drain


class Greeter:
    """A service the DI container used to build: now yielded by the lifespan."""

    def greet(self, name: str) -> str:
        return f"hello {name}"


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
    yield {"greeter": Greeter()}  # once per worker process, like a singleton


def greeter(ctx: JobContext) -> Greeter:
    service: Greeter = ctx.state["greeter"]
    return service


class Timing(Middleware):
    """DecorateProcessor: wraps every command; here it times it and may rewrite."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def around_execute(self, ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        start = time.perf_counter()
        try:
            return await call_next()
        finally:
            self.seconds.append(time.perf_counter() - start)


timing = Timing()
app = App("memory://", lifespan=lifespan, middleware=[timing])


class MyCommand(BaseModel):  # IBackgroundCommand
    my_parameter: str


@app.handler(MyCommand)  # IBackgroundCommandHandler<MyCommand>
async def handle(command: MyCommand, service: Greeter = Depends(greeter)) -> str:
    return service.greet(command.my_parameter)


async def main() -> str:
    job = await app.dispatch_async(MyCommand(my_parameter="foo"))  # IBackgroundDispatcher
    await drain(app)  # what `offload worker examples.migrating.background_processing:app` does
    done = await app.get_job_async(job.id)
    await app.close_async()
    return f"{done.state.value}: {done.result} (timed {len(timing.seconds)} run)"


if __name__ == "__main__":
    print(asyncio.run(main()))
