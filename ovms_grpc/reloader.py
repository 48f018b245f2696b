"""Where the desired model set comes from (CLI flags or config.json) and when it is re-applied.

At start-up, at every ``--file_system_poll_wait_seconds`` tick and on an explicit reload,
config.json is read (off the event loop); it is applied only when its MD5 changed (as OVMS),
and version folders are rescanned every time. A file that does not validate leaves the
previous configuration serving and is reported in status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ovms_grpc.config import ConfigError, read_config
from ovms_grpc.metrics import DEFAULT_FAMILIES
from ovms_grpc.models.config import ModelConfig
from ovms_grpc.models.manager import ModelManager

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    changed: bool
    """A model or version was added, changed or removed."""
    error: str = ""
    """Why config.json was not applied (empty when it was, or did not change)."""


class ConfigReloader:
    def __init__(
        self,
        manager: ModelManager,
        *,
        models: Sequence[ModelConfig] = (),
        config_path: Path | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self._manager = manager
        self._models = tuple(models)
        self._config_path = config_path
        self._poll_seconds = poll_seconds
        self._digest = ""

    async def start(self) -> None:
        """First load; an invalid config.json raises ConfigError (the server then does not start)."""
        if self._config_path is None:
            await self._manager.apply(self._models)
            return
        serving = await self._manager.run_blocking(read_config, self._config_path)
        self._digest = serving.digest
        if serving.metrics.enable:  # the monitoring block is read at start-up only
            self._manager.metrics.enable(serving.metrics.metrics_list or DEFAULT_FAMILIES)
        await self._manager.apply(serving.models)

    async def reload(self) -> ReloadResult:
        changed = False
        error = ""
        if self._config_path is not None:
            try:
                serving = await self._manager.run_blocking(read_config, self._config_path)
            except ConfigError as exc:
                error = str(exc)
                if error != self._manager.config_error:
                    log.error("configuration not applied, the previous one keeps serving: %s", error)
                self._manager.config_error = error
            else:
                self._manager.config_error = ""
                if serving.digest != self._digest:
                    log.info("%s changed: applying it", self._config_path)
                    changed = await self._manager.apply(serving.models)
                    self._digest = serving.digest
        changed = await self._manager.rescan() or changed
        return ReloadResult(changed, error)

    async def poll_forever(self) -> None:
        """Reload every poll interval until cancelled (0 disables polling)."""
        if self._poll_seconds <= 0:
            return
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception:  # polling must survive anything a file system can do
                log.exception("polling the model configuration failed")
