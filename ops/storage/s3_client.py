"""The connection to S3 that every S3 area shares: where (``parse_s3_url``: bucket, prefix, credentials,
endpoint), how long (``Limits``: connect and read timeouts, attempts, a deadline per call with its retries),
and one boto3 client per credentials and endpoint (``S3Client``) counting the requests it sent.
``ops.storage.s3`` builds the areas on it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
)

from ops.config import RawUserinfo, mask_url
from ops.errors import ConfigError

if TYPE_CHECKING:
    pass

S3_FAILURES = (BotoCoreError, ClientError)


class Abandoned(BotoCoreError):
    """The command is stopping (SIGTERM): no further S3 request is sent."""

    fmt = "stopping: no further S3 request is sent"


class DeadlineExceeded(BotoCoreError):
    """An S3 call (its retries included) went past its deadline: no further attempt is made."""

    fmt = "no answer within the deadline of {deadline:g} s"


@dataclass(frozen=True)
class Limits:
    """How long S3 may take: per connection, per answer, per call with its retries, and how many attempts."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    deadline_s: float = 60.0
    max_attempts: int = 5


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "some/prefix/"
    access_key: str | None
    secret_key: str | None
    endpoint_url: str | None
    region: str | None


S3_URL_PARAMETERS = {"endpoint_url", "region"}


def parse_s3_url(url: str) -> S3Location:
    """``s3://[KEY:SECRET@]bucket[/prefix][?endpoint_url=…&region=…]`` (Panoramax's form included).

    The credentials are split off the raw string (up to the last ``@``), so a secret holding an unencoded
    ``/`` (as AWS secrets often do) is read whole and never shown."""
    raw = RawUserinfo.split(url)
    rest = raw.rest if raw is not None else url.partition("://")[2]
    location, _, query_text = rest.partition("?")
    bucket, _, prefix = location.partition("/")
    if not bucket:
        raise ConfigError(f"malformed S3 URL {mask_url(url)}: no bucket name")
    query = {k: v[-1] for k, v in parse_qs(query_text, keep_blank_values=True).items()}
    unknown = sorted(set(query) - S3_URL_PARAMETERS)
    if unknown:
        raise ConfigError(
            f"S3 URL {mask_url(url)}: unknown parameter {', '.join(unknown)} (accepted: "
            f"{', '.join(sorted(S3_URL_PARAMETERS))}); ops would otherwise go to AWS's own endpoint"
        )
    prefix = prefix.strip("/")
    return S3Location(
        bucket=bucket,
        prefix=f"{prefix}/" if prefix else "",
        access_key=unquote(raw.user) if raw is not None and raw.user else None,
        secret_key=unquote(raw.password) if raw is not None and raw.password else None,
        endpoint_url=query.get("endpoint_url"),
        region=query.get("region"),
    )


class S3Client:
    """One boto3 client (shared by the areas with the same credentials and endpoint), bounded by ``limits``,
    and the count of the requests it sent, by operation."""

    def __init__(self, loc: S3Location, limits: Limits | None = None, region_in_environment: bool = False) -> None:
        self.limits = limits or Limits()
        config = Config(
            retries={"mode": "standard", "max_attempts": self.limits.max_attempts},
            connect_timeout=self.limits.connect_timeout_s,
            read_timeout=self.limits.read_timeout_s,
            max_pool_connections=16,
        )
        kwargs: dict[str, Any] = {"config": config}
        if loc.endpoint_url:
            kwargs["endpoint_url"] = loc.endpoint_url
        if loc.region and loc.region != "default":
            kwargs["region_name"] = loc.region
        elif not region_in_environment:
            kwargs["region_name"] = "us-east-1"
        if loc.access_key:
            kwargs["aws_access_key_id"] = loc.access_key
            kwargs["aws_secret_access_key"] = loc.secret_key or ""
        self.boto = boto3.client("s3", **kwargs)
        self.requests: Counter[str] = Counter()
        self._call_started = threading.local()  # a call and its retries run in one thread
        self._lock = threading.Lock()
        self._in_flight = 0
        self._waiting_since = time.monotonic()  # the start of the current wave of calls, or its last answer
        self._abandoned_at: float | None = None
        events = self.boto.meta.events
        events.register("before-call.s3", self._start_call)
        events.register("before-send.s3", self._before_attempt)
        events.register("after-call.s3", self._answered)
        events.register("after-call-error.s3", self._failed)

    def _start_call(self, **_: Any) -> None:
        now = time.monotonic()
        self._call_started.at = now
        with self._lock:
            if self._in_flight == 0:  # a new wave: nothing was waiting for S3
                self._waiting_since = now
            self._in_flight += 1

    def _answered(self, http_response: Any = None, **_: Any) -> None:
        """S3 answered (not a 5xx): the calls in flight, parallel ones too, wait from now."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if http_response is None or http_response.status_code < 500:
                self._waiting_since = time.monotonic()

    def _failed(self, **_: Any) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def abandon(self) -> None:
        """Refuse every attempt from now on (a command stopping: SIGTERM); calls in flight end at their read
        timeout."""
        self._abandoned_at = time.monotonic()

    def _before_attempt(self, event_name: str = "", **_: Any) -> None:
        """One per HTTP request sent, botocore's retries included (``before-send.s3.<Operation>``): counted,
        and refused once past the deadline: of its call, and of the wave of calls it belongs to (calls in
        flight together, as a thread pool sends them, share one deadline from the start of the wave or S3's
        last answer: a second wave never starts a fresh one while S3 says nothing)."""
        self.requests[event_name.rsplit(".", 1)[-1]] += 1
        now = time.monotonic()
        if self._abandoned_at is not None:
            raise Abandoned()
        started = getattr(self._call_started, "at", None)
        with self._lock:
            waiting_since = self._waiting_since
        deadline = self.limits.deadline_s
        if (started is not None and now - started > deadline) or now - waiting_since > deadline:
            raise DeadlineExceeded(deadline=deadline)
