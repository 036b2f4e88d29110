"""The LLM seam's errors: API.md's failure table, one class per row."""

from __future__ import annotations

from opencode_api.errors import OpenCodeError


class LLMError(OpenCodeError):
    """A provider call failed.

    ``type`` is the error type clients see (API.md's failure table: the SSE ``error.type`` and the
    JSON route's body), ``http_status`` the status a JSON route answers with, ``code`` the finer
    cause (``rate_limit``, ``timeout``, ``context_window_exceeded``, ...). ``retryable`` says
    whether the agent loop may try again (429, 5xx, connection lost before the first token);
    ``retry_after`` is the provider's Retry-After in seconds, if it sent one.

        LLMError                          502 provider_error (other 4xx refusals)
        ├── ProviderNotConfiguredError    400 provider_not_configured (no key; ``env`` names it)
        ├── ModelNotFoundError            400 invalid_request (unknown model)
        ├── AuthenticationError           502 provider_auth_failed (401/403)
        ├── ProviderRequestError               502 provider_error
        │   └── ContextWindowExceededError
        └── ProviderUnavailableError      503 unavailable (5xx, resets, DNS), retried if transient
            ├── RateLimitError            503 unavailable, code rate_limit (429)
            └── ProviderTimeoutError      503 unavailable, code timeout
    """

    type = "provider_error"
    code: str | None = None
    http_status = 502
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.provider = provider

    def to_dict(self) -> dict[str, object]:
        """The client-facing error object (no exception reprs, no addresses)."""
        data: dict[str, object] = {"type": self.type, "message": self.message}
        if self.code is not None:
            data["code"] = self.code
        if self.provider is not None:
            data["provider"] = self.provider
        if self.status is not None:
            data["status"] = self.status
        return data


class ProviderNotConfiguredError(LLMError):
    """The model's provider has no credentials: failed at once, never sent, never retried."""

    type = "provider_not_configured"
    http_status = 400

    def __init__(self, provider: str, env: list[str], *, model: str | None = None) -> None:
        names = " or ".join(env) if env else "its API key"
        what = f"model {model!r}" if model else f"provider {provider!r}"
        super().__init__(
            f"{what} needs provider {provider!r}, which is not configured: set {names}",
            provider=provider,
        )
        self.env = list(env)

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["env"] = self.env
        return data


class ProviderUnavailableError(LLMError):
    """5xx, overloaded, connection refused or reset, or the stream dropped mid-way."""

    type = "unavailable"
    code = "provider_unavailable"
    http_status = 503
    retryable = True


class ProviderUnreachableError(ProviderUnavailableError):
    """The provider's host does not resolve: a configuration problem, not retried."""

    code = "provider_unreachable"
    retryable = False


class RateLimitError(ProviderUnavailableError):
    code = "rate_limit"


class ProviderTimeoutError(ProviderUnavailableError):
    code = "timeout"


class AuthenticationError(LLMError):
    type = "provider_auth_failed"


class ProviderRequestError(LLMError):
    code = "bad_request"


class ContextWindowExceededError(ProviderRequestError):
    code = "context_window_exceeded"


class ModelNotFoundError(LLMError):
    type = "invalid_request"
    code = "model_not_found"
    http_status = 400
