"""From a stored integration row to what delivery needs: the vendor settings with secrets
decrypted, and the secret values to redact from anything shown or logged.

Shared by the delivery supervisor and the control plane's preview/test calls; it sits here so
that delivery never depends on the control plane.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventrelay.core.config_secrets import merge_secrets
from eventrelay.destinations import registry
from eventrelay.destinations.base import VendorSettings
from eventrelay.store.vault import Vault

RULES_KEY = "rules"


def vendor_settings(vault: Vault, row: Mapping[str, Any]) -> VendorSettings:
    """The full settings (secrets decrypted) a worker delivers with."""
    destination = registry.get(row["type"])
    if destination is None:
        raise LookupError(f"unknown destination type {row['type']!r}")
    # `rules` (routing rules) sit beside the vendor's fields in the stored config.
    public = {k: v for k, v in row["config"].items() if k != RULES_KEY}
    config = merge_secrets(public, vault.decrypt_json(row["secrets"]))
    return destination.Settings.model_validate(config)


def stored_rules(row: Mapping[str, Any]) -> Any:
    """The integration's routing rules as stored (None: none)."""
    return row["config"].get(RULES_KEY)


def secret_values(vault: Vault, row: Mapping[str, Any]) -> tuple[str, ...]:
    """Every stored secret of the integration, for redaction."""
    return tuple(vault.decrypt_json(row["secrets"]).values())
