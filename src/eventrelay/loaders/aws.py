"""What the S3 and Redshift loaders share: an S3 client (aiobotocore, the async form of the
official AWS SDK) and the classification of its errors.

Error codes: docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html. Throttling and
server errors are retried (S3 answers 503 SlowDown while it scales a prefix:
docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html); credentials,
permissions and a missing bucket put the integration in error with S3's own message. botocore's
own retries are off (one attempt): every failed attempt is then visible in the failure log and
metrics, and backs off with the policy every destination shares.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from eventrelay.destinations.base import OutcomeKind
from eventrelay.loaders.base import LoadError

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "NoSuchBucket",
        "InvalidBucketName",
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "KMS.NotFoundException",
        "KMS.DisabledException",
        "KMS.AccessDeniedException",
    }
)
RETRY_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "OperationAborted",
        "ConditionalRequestConflict",
        "Throttling",
        "ThrottlingException",
        "KMS.ThrottlingException",
    }
)


class S3Session:
    """One open S3 client per loader (connection pool reused across batches)."""

    def __init__(
        self,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        endpoint_url: str | None,
        timeout: float,
    ) -> None:
        self._args: dict[str, Any] = {
            "region_name": region,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": AioConfig(
                connect_timeout=min(10.0, timeout),
                read_timeout=timeout,
                retries={"mode": "standard", "total_max_attempts": 1},
                # A stand-in on an IP and port (EVENTRELAY_VENDOR_BASE_URLS) has no bucket
                # subdomains.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
            ),
        }
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: S3Client | None = None

    async def client(self) -> S3Client:
        if self._client is None:
            stack = contextlib.AsyncExitStack()
            self._client = await stack.enter_async_context(
                get_session().create_client("s3", **self._args)
            )
            self._stack = stack
        return self._client

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def status_of(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def classify(exc: Exception, what: str, committed: bool | None = False) -> LoadError:
    """A LoadError for an exception of botocore; `what` names the operation in the message."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc), status_of(exc)
        text = str(exc.response.get("Error", {}).get("Message") or code or f"HTTP {status}")
        message = f"{what}: {code or status}: {text}"
        if code in RETRY_CODES or status >= 500 or status == 429:
            return LoadError(
                OutcomeKind.RETRY, f"s3_{code or status}", message, committed=committed
            )
        # Any other refusal of our own well-formed request is configuration (credentials,
        # permissions, bucket, key policy): the integration waits in error, events are kept.
        kind = OutcomeKind.AUTH
        return LoadError(kind, f"s3_{code or status}", message, committed=committed)
    if isinstance(exc, NoCredentialsError):
        return LoadError(OutcomeKind.AUTH, "s3_no_credentials", f"{what}: {exc}", committed=False)
    if isinstance(exc, ReadTimeoutError):
        # The request may have been carried out: whether it was is asked before a reload.
        return LoadError(OutcomeKind.RETRY, "s3_timeout", f"{what}: {exc}", committed=None)
    if isinstance(exc, BotoConnectionError | BotoCoreError | OSError):
        return LoadError(
            OutcomeKind.RETRY, "s3_unreachable", f"{what}: {type(exc).__name__}", committed=None
        )
    raise exc
