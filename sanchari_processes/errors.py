"""One exception tree for the whole engine.

Every error a caller can cause or meet is a :class:`SanchariError` subclass that carries its OGC
API exception type and HTTP status, so the edges (CLI, web service) map it without guessing.
"""

from __future__ import annotations

#: The exception ``type`` URIs OGC API - Processes Part 1 (1.0) defines, by our short code (the
#: ``code`` member keeps the short name; other codes are their own ``type``).
_EXCEPTIONS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
OGC_EXCEPTION_TYPES = {
    "NoSuchProcess": _EXCEPTIONS + "no-such-process",
    "NoSuchJob": _EXCEPTIONS + "no-such-job",
    "ResultNotReady": _EXCEPTIONS + "result-not-ready",
}


def exception_type(code: str) -> str:
    """The ``type`` of an OGC exception document with this ``code``."""
    return OGC_EXCEPTION_TYPES.get(code, code)


class SanchariError(Exception):
    """Base of every error SANCHARi raises on purpose."""

    ogc_code: str = "NoApplicableCode"
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(SanchariError):
    """The caller passed something we cannot use (bad option, bad file, bad value)."""

    ogc_code = "InvalidParameterValue"
    http_status = 400


class OutsideCoverageError(SanchariError):
    """The requested place has no imagery."""

    ogc_code = "NotFound"
    http_status = 404


class RequestTooLargeError(SanchariError):
    """The requested area or pixel count is over the configured limit."""

    ogc_code = "RequestTooLarge"
    http_status = 413


class SourceUnavailableError(SanchariError):
    """An imagery source (file, URL, Earth Engine) could not be read right now."""

    ogc_code = "SourceUnavailable"
    http_status = 503


class CredentialsError(SourceUnavailableError):
    """An imagery source needs credentials that are missing or were refused.

    The message says how to authenticate; it never carries the credentials themselves.
    """


class RateLimitedError(SanchariError):
    """An upstream service (Earth Engine) is rate-limiting us or a quota is spent; retry later.

    ``retry_after_s`` is the wait we suggest; the service sends its configured ``Retry-After``.
    """

    ogc_code = "TooManyRequests"
    http_status = 429

    def __init__(self, message: str, retry_after_s: int = 60) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelMissingError(SanchariError):
    """The model weights are missing, unreadable or do not match their metadata."""

    ogc_code = "ModelUnavailable"
    http_status = 503


class QueueFullError(SanchariError):
    """Every worker is busy and the job queue is full; the caller should retry later."""

    ogc_code = "ServerBusy"
    http_status = 503


class BackendUnavailableError(SanchariError):
    """A service the server runs on (its job database, its Dask scheduler) cannot be reached."""

    ogc_code = "ServiceUnavailable"
    http_status = 503


class JobNotFoundError(SanchariError):
    """No job with that identifier exists (or it was dismissed and removed)."""

    ogc_code = "NoSuchJob"
    http_status = 404


class SyncTimeoutError(SanchariError):
    """A synchronous execution ran past the service's limit; it was stopped (use async)."""

    ogc_code = "SyncTimeout"
    http_status = 504


class SettingsError(SanchariError, ValueError):
    """A setting (environment variable or ``pygeoapi-config.yml`` value) is invalid.

    Raised while the service or a command starts; the CLI prints it as one ``error:`` line.
    """


class InternalError(SanchariError):
    """Our own bug: the message shown to callers is generic, the details go to the log."""

    ogc_code = "NoApplicableCode"
    http_status = 500
