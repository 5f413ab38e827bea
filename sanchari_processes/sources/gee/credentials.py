"""Earth Engine settings and credentials: found and checked offline, never logged or returned."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sanchari_processes.errors import CredentialsError

#: Where ``earthengine authenticate`` stores the user's refresh token.
USER_CREDENTIALS = Path("~/.config/earthengine/credentials")
#: How to authenticate, in every "no credentials" message (CLI and service alike).
AUTH_HELP = (
    "set SANCHARI_GEE_SERVICE_ACCOUNT_KEY (or GOOGLE_APPLICATION_CREDENTIALS) to a service-account "
    "JSON key, or run `earthengine authenticate` as the user running SANCHARi, and set "
    "SANCHARI_GEE_PROJECT to a Cloud project registered for Earth Engine "
    "(see Google Earth Engine imagery in the README)"
)


@dataclass(frozen=True)
class GeeSettings:
    """How this process reaches Earth Engine (paths and ids only: no secrets; picklable)."""

    project: str | None = None
    #: Service-account JSON key (or a gcloud ``authorized_user`` file).
    service_account_key: Path | None = None
    #: The refresh token ``earthengine authenticate`` stores.
    user_credentials: Path = field(default_factory=USER_CREDENTIALS.expanduser)
    #: Earth Engine endpoint (default: the standard one; the high-volume one suits batches).
    api_url: str | None = None
    #: Side of the square tiles fetched per ``computePixels`` call (EE caps one response).
    tile_px: int = 1024
    timeout_s: int = 300

    def __post_init__(self) -> None:
        if not 16 <= self.tile_px <= 8192:
            raise ValueError("tile_px must be within 16..8192")

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any]) -> GeeSettings:
        """Parse the ``gee`` block of the processor settings (unknown keys are errors)."""
        known = {"project", "service_account_key", "application_credentials"}
        known |= {"user_credentials", "api_url", "tile_px", "timeout_s"}
        unknown = sorted(set(block) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) in gee: {', '.join(unknown)}")
        key = _text(block.get("service_account_key")) or _text(block.get("application_credentials"))
        user = _text(block.get("user_credentials"))
        return cls(
            project=_text(block.get("project")),
            service_account_key=Path(key).expanduser() if key else None,
            user_credentials=Path(user or str(USER_CREDENTIALS)).expanduser(),
            api_url=_text(block.get("api_url")),
            tile_px=int(block.get("tile_px") or 1024),
            timeout_s=int(block.get("timeout_s") or 300),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GeeSettings:
        """The same settings from environment variables (for the CLI, read at its edge)."""
        return cls.from_mapping(
            {
                "project": environ.get("SANCHARI_GEE_PROJECT"),
                "service_account_key": environ.get("SANCHARI_GEE_SERVICE_ACCOUNT_KEY"),
                "application_credentials": environ.get("GOOGLE_APPLICATION_CREDENTIALS"),
                "user_credentials": environ.get("SANCHARI_GEE_USER_CREDENTIALS"),
                "api_url": environ.get("SANCHARI_GEE_API_URL"),
            }
        )


@dataclass(frozen=True)
class GeeCredentials:
    """Where the credentials are and which project bills the requests (contents not kept)."""

    kind: Literal["service_account", "authorized_user", "earthengine"]
    path: Path
    project: str | None


def resolve_credentials(settings: GeeSettings) -> GeeCredentials:
    """Find usable credentials without touching the network, or say how to authenticate.

    Checked before any job exists, so a server without credentials answers 503 at once.
    """
    if importlib.util.find_spec("ee") is None:
        raise CredentialsError(
            "Earth Engine support is not installed: pip install 'sanchari-processes[gee]', "
            f"then {AUTH_HELP}"
        )
    if settings.service_account_key is not None:
        info = _read_json(settings.service_account_key, "the service-account key")
        kind = info.get("type")
        if kind == "service_account" and info.get("client_email") and info.get("private_key"):
            project = settings.project or _text(info.get("project_id"))
            return GeeCredentials("service_account", settings.service_account_key, project)
        if kind == "authorized_user" and info.get("refresh_token"):
            project = settings.project or _text(info.get("quota_project_id"))
            return _with_project(
                GeeCredentials("authorized_user", settings.service_account_key, project)
            )
        raise CredentialsError(
            "the file named by SANCHARI_GEE_SERVICE_ACCOUNT_KEY / GOOGLE_APPLICATION_CREDENTIALS "
            f"is not a service-account key; {AUTH_HELP}"
        )
    if settings.user_credentials.is_file():
        info = _read_json(settings.user_credentials, "the stored Earth Engine credentials")
        if not info.get("refresh_token"):
            raise CredentialsError(
                f"the stored Earth Engine credentials hold no refresh token; {AUTH_HELP}"
            )
        project = settings.project or _text(info.get("project"))
        return _with_project(GeeCredentials("earthengine", settings.user_credentials, project))
    raise CredentialsError(f"Earth Engine is not configured: no credentials found; {AUTH_HELP}")


def _with_project(creds: GeeCredentials) -> GeeCredentials:
    """User credentials need a Cloud project (service accounts default to their own)."""
    if not creds.project:
        raise CredentialsError(
            "Earth Engine needs a Cloud project for user credentials: set SANCHARI_GEE_PROJECT "
            "(or run `earthengine set_project PROJECT`)"
        )
    return creds


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A credentials file as JSON; errors name what it is, never its path or contents."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CredentialsError(f"{what} file does not exist; {AUTH_HELP}") from None
    except (OSError, ValueError):
        raise CredentialsError(f"{what} file is not readable JSON; {AUTH_HELP}") from None
    if not isinstance(info, dict):
        raise CredentialsError(f"{what} file is not a JSON object; {AUTH_HELP}")
    return info


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None
