"""Settings of the imagery sources that come from the service's configuration.

Kept apart from the sources themselves so the sources' interface (:mod:`.base`) can name them
without importing a source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sanchari_processes.errors import SettingsError
from sanchari_processes.netguard import AllowList, NetPolicy


@dataclass(frozen=True)
class RemoteSettings:
    """Remote imagery: where it may come from, how long it may take, how many reads at once."""

    policy: NetPolicy = field(default_factory=NetPolicy)
    #: Remote headers checked at once by the web process (more wait their turn).
    concurrency: int = 4
    #: Longest time a job may spend copying a remote raster.
    fetch_deadline_s: float = 600.0

    @property
    def probe_deadline_s(self) -> float:
        """Longest time a header check may take (a connect and two reads)."""
        return self.policy.connect_timeout_s + 2 * self.policy.read_timeout_s

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any]) -> RemoteSettings:
        """``remote_allow``, ``remote_timeout_s``, ``remote_concurrency`` of a processor block."""
        timeout = _number(block, "remote_timeout_s", 15.0)
        concurrency = int(_number(block, "remote_concurrency", 4))
        if timeout <= 0 or concurrency < 1:
            raise SettingsError("remote_timeout_s must be > 0 and remote_concurrency >= 1")
        policy = NetPolicy(
            allow=AllowList.parse(block.get("remote_allow") or None),
            connect_timeout_s=min(5.0, timeout),
            read_timeout_s=timeout,
        )
        deadline = _number(block, "remote_fetch_deadline_s", 600.0)
        return cls(policy=policy, concurrency=concurrency, fetch_deadline_s=deadline)


#: The processor settings :meth:`RemoteSettings.from_mapping` reads.
REMOTE_KEYS = {"remote_allow", "remote_timeout_s", "remote_concurrency", "remote_fetch_deadline_s"}


def _number(block: Mapping[str, Any], key: str, default: float) -> float:
    value = block.get(key)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"setting {key} must be a number, got {value!r}") from None
