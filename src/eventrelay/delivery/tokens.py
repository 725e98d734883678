"""OAuth access tokens for vendors whose settings hold a refresh token (Google Ads, LinkedIn).

The destination module describes the exchange (`token_request`, `parse_token`); this cache
sends it through the shared sender, keeps the token until a minute before it expires, and
refreshes on demand (the worker forces one refresh when the vendor answers 401).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from eventrelay.delivery.sender import HttpSender, TransportError
from eventrelay.destinations.base import BuildContext, Destination, VendorSettings
from eventrelay.destinations.classify import body_text

_EARLY = 60.0


class TokenError(Exception):
    def __init__(self, retryable: bool, message: str) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.message = message


class TokenCache:
    def __init__(
        self,
        destination: Destination,
        settings: VendorSettings,
        sender: HttpSender,
        on_token: Callable[[str], None] | None = None,
    ) -> None:
        self._destination = destination
        self._settings = settings
        self._sender = sender
        # Told every new token before it is used (the worker's redaction set).
        self._on_token = on_token
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def needed(self, ctx: BuildContext) -> bool:
        return self._destination.token_request(self._settings, ctx) is not None

    async def get(self, ctx: BuildContext, force: bool = False) -> str:
        async with self._lock:
            if not force and self._token and time.monotonic() < self._expires:
                return self._token
            request = self._destination.token_request(self._settings, ctx)
            assert request is not None
            try:
                response = await self._sender.send(request)
            except TransportError as exc:
                raise TokenError(True, f"token endpoint: {exc.message}") from None
            except Exception as exc:  # a request the HTTP client refuses: a failure, not a crash
                raise TokenError(True, f"token endpoint: {type(exc).__name__}") from None
            if response.status >= 500 or response.status == 429:
                raise TokenError(
                    True, f"token endpoint HTTP {response.status}: {body_text(response)}"
                )
            if response.status != 200:
                raise TokenError(
                    False, f"refresh token refused (HTTP {response.status}): {body_text(response)}"
                )
            try:
                token, lifetime = self._destination.parse_token(response)
            except (KeyError, ValueError, TypeError):
                raise TokenError(True, "token endpoint answered without a token") from None
            if self._on_token is not None:
                self._on_token(token)
            self._token = token
            self._expires = time.monotonic() + max(0.0, lifetime - _EARLY)
            return token
