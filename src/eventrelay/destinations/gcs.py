"""Google Cloud Storage through its S3-compatible XML API, with HMAC keys.

The same objects, key layouts and batch ids as `s3` (destinations/s3.py): only the endpoint,
the credentials and the conditional write differ. Checked against Google's documentation:
- interoperability (cloud.google.com/storage/docs/interoperability): S3 tools and libraries
  work against https://storage.googleapis.com with a Cloud Storage HMAC key, signed with AWS
  Signature V4 (our client is aiobotocore, as for S3).
- HMAC keys (cloud.google.com/storage/docs/authentication/hmackeys): an access ID (24
  characters for a user account, 61 for a service account, e.g. GOOGTS7C7FUP3AIRVJTE2...) and a
  40-character base64 secret; the requests carry the key's account's permissions
  (storage.objects.create, .get and .delete on the bucket: roles/storage.objectUser).
- conditional writes: the XML API's documented precondition is `x-goog-if-generation-match`
  (0: only when no live object has that name), not S3's `If-None-Match: *`
  (cloud.google.com/storage/docs/xml-api/reference-headers,
  cloud.google.com/storage/docs/request-preconditions); the loader sends that header instead.
  A retry of a stored batch then gets 412 and counts as done, like S3.
- multipart uploads (cloud.google.com/storage/docs/multipart-uploads) are compatible with S3's,
  but take no preconditions: as for S3 above 16 MiB, HeadObject is asked first.
- encryption: Cloud Storage encrypts every object at rest; S3's SSE headers
  (x-amz-server-side-encryption) are not among the XML API's headers, so no `server_side_
  encryption` option (a bucket's default CMEK key still applies).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from eventrelay.destinations.fields import ENDPOINT, Secret
from eventrelay.destinations.s3 import S3, ObjectStoreSettings


def _check_bucket(value: str) -> str:
    # Cloud Storage bucket names (cloud.google.com/storage/docs/buckets#naming): 3-63
    # lowercase letters, digits, hyphens, underscores and dots, starting and ending with a
    # letter or digit, not starting with "goog". (Dotted names up to 222 characters need a
    # verified domain: not accepted here.)
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]", value) or ".." in value:
        raise ValueError("must be 3-63 lowercase letters, digits, dots, hyphens or underscores")
    if value.startswith("goog"):
        raise ValueError('must not start with "goog"')
    return value


class GcsSettings(ObjectStoreSettings):
    bucket: Annotated[str, AfterValidator(_check_bucket), Field(json_schema_extra=ENDPOINT)]
    access_key_id: Annotated[
        str,
        Field(
            pattern=r"^GOOG[A-Z0-9]{20,124}$",
            description="HMAC key access ID (GOOG..., 24 or 61 characters).",
        ),
    ]
    secret_access_key: Annotated[Secret, Field(description="HMAC key secret.")]


class Gcs(S3):
    type = "gcs"
    title = "Google Cloud Storage"
    vendor = "Google Cloud Storage"
    api = "XML API PUT Object (S3-compatible, HMAC keys)"
    docs_url = "https://cloud.google.com/storage/docs/interoperability"
    Settings = GcsSettings  # type: ignore[assignment]  # S3's writer takes ObjectStoreSettings


destination = Gcs()
