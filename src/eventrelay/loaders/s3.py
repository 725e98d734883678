"""S3 loader: one PutObject per batch, a multipart upload above `MULTIPART_THRESHOLD`.

Idempotency: the key comes from the batch's content (destinations/s3.py). PutObject is sent
with `If-None-Match: *` (S3 conditional writes:
docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html): a retry of a batch
whose object is already stored gets 412 and counts as done; a multipart upload asks HeadObject
first. Uploading the object is the commit: `committed` asks HeadObject.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from botocore.exceptions import ClientError

from eventrelay.destinations.loading import StagedObject, Written
from eventrelay.destinations.s3 import ObjectStoreSettings, S3Settings
from eventrelay.loaders.aws import S3Session, classify, error_code, status_of
from eventrelay.loaders.base import CheckStep, Loader, LoadReport

MULTIPART_THRESHOLD = 16 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024


def s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def split_url(url: str) -> tuple[str, str]:
    bucket, _, key = url.partition("://")[2].partition("/")
    return bucket, key


def _if_absent_generation(request: Any, **_: Any) -> None:
    request.headers["x-goog-if-generation-match"] = "0"


class S3Uploader:
    """Puts staged objects (shared by the S3 loader and Redshift's staging)."""

    def __init__(
        self,
        session: S3Session,
        bucket: str,
        encryption: str | None = None,
        kms_key_id: str | None = None,
        *,
        scheme: str = "s3",
        generation_precondition: bool = False,
    ) -> None:
        self.session = session
        self.bucket = bucket
        self.scheme = scheme
        # Cloud Storage's XML API takes `x-goog-if-generation-match: 0` where S3 takes
        # `If-None-Match: *` (destinations/gcs.py); botocore has no parameter for it, so a
        # before-sign hook adds the header to PutObject.
        self._generation = generation_precondition
        self._hooked = False
        self._extra: dict[str, Any] = {}
        if encryption:
            self._extra["ServerSideEncryption"] = encryption
        if kms_key_id:
            self._extra["SSEKMSKeyId"] = kms_key_id

    def url(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket}/{key}"

    async def put(self, item: StagedObject) -> bool:
        """Store the object; False when it was already there (an earlier attempt stored it)."""
        client = await self.session.client()
        if self._generation and not self._hooked:
            client.meta.events.register("before-sign.s3.PutObject", _if_absent_generation)
            self._hooked = True
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": item.key,
            "ContentType": item.content_type,
            **self._extra,
        }
        if item.content_encoding:
            args["ContentEncoding"] = item.content_encoding
        try:
            if len(item.body) <= MULTIPART_THRESHOLD:
                if self._generation:
                    await client.put_object(Body=item.body, **args)
                else:
                    await client.put_object(Body=item.body, IfNoneMatch="*", **args)
                return True
            if await self.exists(item.key):
                return False
            await self._multipart(args, item.body)
            return True
        except ClientError as exc:
            if status_of(exc) == 412 or error_code(exc) == "PreconditionFailed":
                return False
            raise classify(exc, f"PUT {self.url(item.key)}") from None
        except Exception as exc:
            raise classify(exc, f"PUT {self.url(item.key)}", committed=None) from None

    async def _multipart(self, args: dict[str, Any], body: bytes) -> None:
        client = await self.session.client()
        upload = await client.create_multipart_upload(**args)
        upload_id = upload["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, len(body), PART_SIZE), start=1):
                part = await client.upload_part(
                    Bucket=args["Bucket"],
                    Key=args["Key"],
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body[start : start + PART_SIZE],
                )
                parts.append({"ETag": part["ETag"], "PartNumber": number})
            await client.complete_multipart_upload(
                Bucket=args["Bucket"],
                Key=args["Key"],
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
        except BaseException:
            # Parts of an abandoned upload are billed until aborted.
            with contextlib.suppress(Exception):  # the original error is the one to report
                await client.abort_multipart_upload(
                    Bucket=args["Bucket"], Key=args["Key"], UploadId=upload_id
                )
            raise

    async def exists(self, key: str) -> bool:
        client = await self.session.client()
        try:
            await client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if status_of(exc) == 404 or error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise classify(exc, f"HEAD {self.url(key)}") from None
        except Exception as exc:
            raise classify(exc, f"HEAD {self.url(key)}", committed=None) from None

    async def delete(self, key: str) -> None:
        client = await self.session.client()
        try:
            await client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise classify(exc, f"DELETE {self.url(key)}", committed=None) from None

    async def check(self, prefix: str) -> list[CheckStep]:
        """Create and delete a scratch object: proves PutObject and DeleteObject rights."""
        key = f"{prefix}.eventrelay-test-{uuid.uuid4().hex}"
        steps: list[CheckStep] = []
        for step, action in (
            (f"PUT {self.url(key)}", self._put_scratch),
            (f"DELETE {self.url(key)}", self.delete),
        ):
            try:
                await action(key)
            except Exception as exc:
                message = getattr(exc, "message", None) or type(exc).__name__
                steps.append(CheckStep(step, False, message))
                return steps
            steps.append(CheckStep(step, True))
        return steps

    async def _put_scratch(self, key: str) -> None:
        client = await self.session.client()
        try:
            await client.put_object(
                Bucket=self.bucket, Key=key, Body=b"eventrelay test\n", **self._extra
            )
        except Exception as exc:
            raise classify(exc, f"PUT {self.url(key)}") from None


class S3Loader(Loader):
    def _make_uploader(self) -> S3Uploader:
        settings = self.settings
        assert isinstance(settings, S3Settings)
        session = S3Session(
            settings.region,
            settings.access_key_id,
            settings.secret_access_key.get_secret_value(),
            self.ctx.url("s3"),
            self.ctx.timeout,
        )
        return S3Uploader(
            session, settings.bucket, settings.server_side_encryption, settings.kms_key_id
        )

    def _uploader(self) -> S3Uploader:
        uploader: S3Uploader | None = getattr(self, "_up", None)
        if uploader is None:
            uploader = self._make_uploader()
            self._up = uploader
        return uploader

    async def close(self) -> None:
        uploader: S3Uploader | None = getattr(self, "_up", None)
        if uploader is not None:
            await uploader.session.close()

    def refs(self, written: Written) -> list[str]:
        uploader = self._uploader()
        return [uploader.url(o.key) for o in written.objects]

    async def load(self, written: Written) -> LoadReport:
        uploader = self._uploader()
        stored = True
        size = 0
        for item in written.objects:
            stored = await uploader.put(item) and stored
            size += len(item.body)
        return LoadReport(
            ", ".join(self.refs(written)),
            rows=len(written.message_ids),
            bytes=size,
            already_committed=not stored,
        )

    async def committed(self, batch_id: str, refs: list[str]) -> bool:
        uploader = self._uploader()
        for ref in refs:
            _, key = split_url(ref)
            if not await uploader.exists(key):
                return False
        return True

    async def check(self) -> list[CheckStep]:
        assert isinstance(self.settings, ObjectStoreSettings)
        return await self._uploader().check(self.settings.prefix)
