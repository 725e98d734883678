"""Stored credentials never follow a changed target.

An integration's secrets were given for one endpoint (a webhook URL, a warehouse host). When an
update changes an endpoint field (`fields.ENDPOINT`) and keeps a stored secret ("***" or left
out), the update is refused until the secrets are given again or removed: otherwise anyone
allowed to edit could point the integration at their own server and receive the owner's API key
or valid signatures. This applies to every role (knowing the secret is the proof, not the role).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from eventrelay.core.config_secrets import Pointer, dotted
from eventrelay.destinations.base import Destination, VendorSettings, endpoint_values
from eventrelay.errors import ApiError


def _target(value: Any) -> Any:
    """An endpoint value in the form that decides where requests go: URLs by scheme, host, port,
    path and query (one host often serves many receivers: https://hooks.example/<id>), names
    case-insensitively."""
    if not isinstance(value, str):
        return value
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.hostname:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname.rstrip(".")
        return (parts.scheme, host, port, parts.path or "/", parts.query)
    return value.strip().rstrip(".").lower()


def refuse_redirected_secrets(
    destination: Destination,
    stored_config: Mapping[str, Any],
    settings: VendorSettings,
    kept: Sequence[Pointer],
) -> None:
    """422 `secrets_required` naming every kept secret when an endpoint field changed."""
    if not kept:
        return
    before = endpoint_values(destination.Settings, stored_config)
    after = endpoint_values(destination.Settings, settings.model_dump(mode="json", by_alias=True))
    changed = [key for key in before if _target(before[key]) != _target(after[key])]
    if not changed:
        return
    what = ", ".join(f"config.{key}" for key in changed)
    details = [
        {
            "field": dotted(path),
            "message": f"give this secret again ({what} changed; stored secrets are not sent to "
            "a new target), or null to remove it",
        }
        for path in kept
    ]
    raise ApiError(
        422,
        "secrets_required",
        f"{what} changed: give the stored secrets again "
        f"({', '.join(d['field'] for d in details)}) or remove them with null",
        details,
    )
