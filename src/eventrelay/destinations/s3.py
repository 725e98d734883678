"""Amazon S3, PUT Object."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import ENDPOINT, AwsRegion, S3Bucket, Secret


class S3Settings(VendorSettings):
    # The bucket and region name the host (https://<bucket>.s3.<region>.amazonaws.com).
    bucket: Annotated[S3Bucket, Field(json_schema_extra=ENDPOINT)]
    prefix: Annotated[
        str, Field(max_length=512, pattern=r"^[^\x00-\x1f]*$", description="Key prefix.")
    ] = ""
    region: Annotated[AwsRegion, Field(json_schema_extra=ENDPOINT)]
    access_key_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{16,128}$")]
    secret_access_key: Secret


class S3(Destination):
    type = "s3"
    title = "Amazon S3"
    vendor = "Amazon S3"
    api = "PUT Object"
    category = "storage"
    docs_url = "https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html"
    Settings = S3Settings
    max_batch = 10_000


destination = S3()
