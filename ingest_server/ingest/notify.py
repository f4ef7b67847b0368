"""``upload_finished`` hooks: run as tracked background work, never before the client's answer.

Each implementation gets its own copy of the upload's summary (one plugin's changes must not
reach the next), in pluggy's order; an awaitable it returns is awaited with a timeout. A hook
that raises or times out is logged and never changes the upload's outcome. ``wait`` waits for
the notifications still running at shutdown.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
from typing import Any

import pluggy

from ..plugins.loading import hook_calls

log = logging.getLogger("ingest_server.ingest")
HOOK_TIMEOUT_S = 30.0


class Notifier:
    def __init__(self, pm: pluggy.PluginManager, timeout_s: float = HOOK_TIMEOUT_S) -> None:
        self.pm = pm
        self.timeout_s = timeout_s
        self._tasks: set[asyncio.Task] = set()

    def notify(self, body: dict[str, Any]) -> None:
        """Start the hooks for one upload's summary ``body`` (returns at once)."""
        if not self.pm.hook.upload_finished.get_hookimpls():
            return
        task = asyncio.get_running_loop().create_task(self._run(body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def _run(self, body: dict[str, Any]) -> None:
        for step in hook_calls(self.pm.hook.upload_finished, per_call=("upload",)):
            try:
                result = step.call(copy.deepcopy(body))
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, self.timeout_s)
                elif step.through_pluggy:  # pluggy's list of answers: await each awaitable
                    for answer in result:
                        if inspect.isawaitable(answer):
                            await asyncio.wait_for(answer, self.timeout_s)
            except Exception as e:  # notification problems never change an upload's outcome
                log.error("plugin %s: upload_finished failed: %s: %s", step.plugin,
                          e.__class__.__name__, e)

    async def wait(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the notifications in flight; cancel what is left."""
        if not self._tasks:
            return
        done, pending = await asyncio.wait(set(self._tasks), timeout=max(timeout_s, 0.0))
        for task in pending:
            log.warning("upload_finished hooks still running at shutdown: cancelled")
            task.cancel()
        if pending:
            await asyncio.wait(pending)
