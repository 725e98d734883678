"""Google Cloud Storage loader: the S3 loader against the XML API's S3-compatible endpoint
(https://storage.googleapis.com), signed with an HMAC key (what was checked in Google's
documentation is in destinations/gcs.py)."""

from __future__ import annotations

from eventrelay.destinations.gcs import GcsSettings
from eventrelay.loaders.aws import S3Session
from eventrelay.loaders.s3 import S3Loader, S3Uploader

ENDPOINT = "https://storage.googleapis.com"
# The SigV4 credential scope's region: Google's simple-migration samples for S3 SDKs
# (cloud.google.com/storage/docs/aws-simple-migration) sign with "auto".
REGION = "auto"


class GcsLoader(S3Loader):
    def _make_uploader(self) -> S3Uploader:
        settings = self.settings
        assert isinstance(settings, GcsSettings)
        session = S3Session(
            REGION,
            settings.access_key_id,
            settings.secret_access_key.get_secret_value(),
            self.ctx.url("gcs") or ENDPOINT,
            self.ctx.timeout,
        )
        return S3Uploader(session, settings.bucket, scheme="gs", generation_precondition=True)
