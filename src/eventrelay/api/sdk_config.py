"""The remote settings the browser SDKs load before they send anything, served for a source so
a site's stock snippet needs only its settings URL pointed at eventrelay.

- analytics.js (analytics-next) GETs `<cdnURL>/v1/projects/<writeKey>/settings` and sends
  events through its `Segment.io` integration's settings: `apiKey`, `apiHost` (host and path,
  no scheme: "events.example.com/v1") and `protocol` ("http"/"https")
  (packages/browser/src/browser/{index,settings}.ts and plugins/segmentio/index.ts in
  github.com/segmentio/analytics-next). Only `Segment.io` is listed: device-mode destinations
  would make analytics.js fetch their code from Segment's CDN, and eventrelay delivers
  server-side anyway. `metrics.sampleRate: 0` keeps its client metrics off.
- RudderStack's JavaScript SDK v3 GETs `<configUrl>/sourceConfig/?p=..&v=..&writeKey=<key>..`
  with the write key as Basic auth, and needs `source.id`, `source.config` and
  `source.destinations` (an array); `source.enabled: false` stops it; `statsCollection` switches
  its error and metrics reporting (packages/analytics-js/src/components/configManager/
  {ConfigManager.ts,types.ts,util/validate.ts,util/commonUtil.ts} in
  github.com/rudderlabs/rudder-sdk-js). The data plane URL is not part of it: the snippet's
  `load(writeKey, dataPlaneUrl)` gives it.
"""

from __future__ import annotations

from typing import Any

from eventrelay.routing.directory import SourceEntry

SETTINGS_SUFFIX = "/settings"


def settings_write_key(path: str, prefix: str) -> str | None:
    """The write key of `/v1/projects/<writeKey>/settings`, else None."""
    if not path.endswith(SETTINGS_SUFFIX):
        return None
    key = path[len(prefix) : -len(SETTINGS_SUFFIX)]
    return key if key and "/" not in key else None


def segment_settings(write_key: str, public_url: str) -> dict[str, Any]:
    scheme, _, rest = public_url.partition("://")
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": rest.rstrip("/") + "/v1",
                "protocol": scheme,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
            }
        },
        "plan": {},
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


def rudder_source_config(write_key: str, source: SourceEntry) -> dict[str, Any]:
    return {
        "isHosted": False,
        "source": {
            "id": source.id,
            "name": source.name,
            "writeKey": write_key,
            "workspaceId": source.org_id,
            "enabled": True,
            "deleted": False,
            "config": {
                "statsCollection": {"errors": {"enabled": False}, "metrics": {"enabled": False}}
            },
            "destinations": [],
            "connections": [],
            "sourceDefinition": {"name": "Javascript", "displayName": "Javascript"},
        },
    }
