"""The ilert HTTP client: sends events and heartbeat pings and classifies every answer once.

Everything downstream decides from :class:`Outcome` (and a REJECTED result's ``reason``),
never from status codes:

* 2xx                                → ``DELIVERED`` (ilert answers 202)
* 429                                → ``RATE_LIMITED`` (with ``Retry-After`` seconds when sent)
* 3xx, 407, 408, 5xx, network, timeout → ``RETRY`` (a redirect or a proxy asking for
  credentials means a wrong URL or proxy setting: the event is fine, so it waits, it is not
  thrown away)
* 404 with ilert's error body        → ``REJECTED``: ilert says the thing does not exist
  (reason :data:`NOT_FOUND` on the policy calls, :data:`HEARTBEAT_NOT_FOUND` on a ping)
* 404 on a heartbeat ping, no body   → ``REJECTED`` :data:`HEARTBEAT_NOT_FOUND` once that beat
  URL has answered 2xx for some key in this process (ilert's beat host answers a HEAD for a
  deleted key with a bare 404); before that, as the next line
* 404 without ilert's error body     → ``RETRY`` (a wrong URL or a proxy's page, logged as an
  ERROR): events, pings and the policy calls alike
* any other 4xx                      → ``REJECTED`` (permanent: retrying cannot help)

Which beat URLs have answered is the client's own state, kept per base URL
(``{beat}/pings`` and the legacy ``{api}/heartbeats``) for the life of the process: a wrong
``--ilert_beat_url`` never answers 2xx, so its 404s stay retried and visible.

Event bodies arrive serialised (by the source, once, where the event entered), so nothing here
can fail to encode. The three escalation-policy calls of policy sync carry the user API key
(``Authorization: Bearer``) and return ilert's JSON answer with their result.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from ilagent import USER_AGENT
from ilagent.config import DEFAULT_API_URL, DEFAULT_BEAT_URL, DEFAULT_TIMEOUT, MAX_RETRY_AFTER
from ilagent.http1 import HttpFailure, Pool
from ilagent.logs import mask, mask_key
from ilagent.outbound import environment
from ilagent.proxies import Proxies

logger = logging.getLogger(__name__)

BODY_EXCERPT = 300
NOT_FOUND = "not_found"  # a policy call's 404 with ilert's error body: the user, policy or level
HEARTBEAT_NOT_FOUND = "heartbeat_not_found"  # ilert knows no heartbeat with the pinged key
_JSON = {"Content-Type": "application/json"}
ROUTE_HEADER = "X-Ilagent-Route"  # which [[route]] made an event (for the sandbox)


class Outcome(enum.Enum):
    """What one request to ilert came to."""

    DELIVERED = "delivered"
    RATE_LIMITED = "rate_limited"
    RETRY = "retry"
    REJECTED = "rejected"

    @property
    def retriable(self) -> bool:
        return self in (Outcome.RATE_LIMITED, Outcome.RETRY)


@dataclass(frozen=True)
class Result:
    """One answer from ilert: outcome, HTTP status (None for network errors) and details."""

    outcome: Outcome
    status: int | None
    detail: str = ""
    retry_after: float | None = None
    reason: str = ""  # why a REJECTED job is dead-lettered, when more precise than "rejected"
    # seconds the request took, from sending to the answer (None: no request was made)
    elapsed: float | None = field(default=None, compare=False)

    @property
    def status_label(self) -> str:
        """The HTTP status; without one, "network_error" for a failed request and "none" for
        a decision made without asking ilert (a stale event, policy sync not configured)."""
        if self.status is not None:
            return str(self.status)
        return "network_error" if self.outcome is Outcome.RETRY else "none"


def classify(status: int) -> Outcome:
    """The outcome of an HTTP status from ilert."""
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 429:
        return Outcome.RATE_LIMITED
    if status in (407, 408) or status >= 500 or 300 <= status < 400:
        return Outcome.RETRY
    return Outcome.REJECTED


class IlertClient:
    """Talks to ilert (or the local sandbox) over one pool of keep-alive connections
    (:mod:`ilagent.http1`).

    Open it with ``async with`` or :meth:`start`; the constructor does no I/O. :meth:`start`
    reads the environment once, with curl's rules (:mod:`ilagent.outbound`): the proxies of
    ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY``, and the CA certificates TLS trusts, the
    system's or those of ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``.
    """

    def __init__(
        self,
        *,
        api_url: str = DEFAULT_API_URL,
        beat_url: str = DEFAULT_BEAT_URL,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 100,
        api_key: str | None = None,
        wrong_url_then: str = "The message is kept and retried",
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._wrong_url_then = wrong_url_then  # what becomes of a request a wrong URL refused
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.beat_url = beat_url.rstrip("/")
        self._timeout = timeout
        self._max_connections = max_connections
        self._pool: Pool | None = None
        self._proxies = Proxies()  # from the environment, at start
        self._beats_answered: set[str] = set()  # heartbeat base URLs that answered a ping 2xx
        self.last_connection_failure: float | None = None  # monotonic time, None once it works
        self.last_failure = ""  # the last transient failure, as the local fallback tells it

    async def start(self) -> None:
        """Open the connection pool."""
        if self._pool is None:
            self._proxies, tls = await environment(peer="ilert")
            self._pool = Pool(tls=tls, timeout=self._timeout, limit=self._max_connections,
                              headers={"User-Agent": USER_AGENT, "Accept": "application/json"})

    async def close(self) -> None:
        """Close the connection pool."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> IlertClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def post_event(self, path: str, body: bytes, *, route: str | None = None) -> Result:
        """POST a serialised event to ``{api_url}{path}`` (``/events``, ``/v1/events/kafka/<key>``);
        ``route`` names the ``[[route]]`` that made it in an ``X-Ilagent-Route`` header (ilert
        ignores it, the sandbox shows it; never in the body)."""
        return (await self._exchange("POST", self.api_url + path, body=body,
                                     extra={ROUTE_HEADER: route} if route else None))[0]

    async def ping_heartbeat(self, key: str) -> Result:
        """Ping a heartbeat: legacy ``il1hbt…`` keys on the API host, others on the beat host.

        A 404 for a key ilert does not know is REJECTED with reason ``heartbeat_not_found``
        (see the module docstring for when a bare 404 counts as that)."""
        encoded = quote(key, safe="")
        if key.startswith("il1hbt"):
            base, method = f"{self.api_url}/heartbeats", "GET"
        else:
            base, method = f"{self.beat_url}/pings", "HEAD"
        result, _ = await self._exchange(method, f"{base}/{encoded}", beat=base,
                                         not_found=HEARTBEAT_NOT_FOUND)
        return result

    async def find_user(self, email: str) -> tuple[Result, object]:
        """``POST /users/search-email``: the ilert user with this e-mail (policy sync)."""
        return await self._exchange("POST", f"{self.api_url}/users/search-email",
                                    body=json.dumps({"email": email}).encode(), auth=True,
                                    not_found=NOT_FOUND)

    async def resolve_policy(self, routing_key: str) -> tuple[Result, object]:
        """``GET /escalation-policies/resolve?routing-key=``: the policy of a routing key."""
        return await self._exchange(
            "GET", f"{self.api_url}/escalation-policies/resolve?routing-key="
                   f"{quote(routing_key, safe='')}", auth=True, not_found=NOT_FOUND)

    async def update_level(self, policy_id: int, level: int, rule: dict[str, object]
                           ) -> tuple[Result, object]:
        """``PUT /escalation-policies/{id}/levels/{level}``: replace one level's rule."""
        return await self._exchange(
            "PUT", f"{self.api_url}/escalation-policies/{policy_id}/levels/{level}",
            body=json.dumps(rule).encode(), auth=True, not_found=NOT_FOUND)

    async def _exchange(
        self, method: str, url: str, *, body: bytes | None = None, auth: bool = False,
        not_found: str = "", beat: str | None = None, extra: dict[str, str] | None = None,
    ) -> tuple[Result, object]:
        """One request: its result, and on success with ``auth`` the parsed JSON answer.

        ``not_found`` is the reason of a 404 that ilert itself gave; ``beat`` the base URL of
        a heartbeat ping, whose bare 404 is ilert's once that base has answered 2xx."""
        if self._pool is None:
            raise RuntimeError("IlertClient used before start()")
        headers = {**(_JSON if body is not None else {}), **(self._auth if auth else {}),
                   **(extra or {})}
        answer: object = None
        started = time.monotonic()
        try:
            response = await self._pool.request(method, url, body=body, headers=headers,
                                                route=self._proxies.route(url))
        except (TimeoutError, OSError) as exc:
            self.last_connection_failure = self.last_connection_failure or time.monotonic()
            if isinstance(exc, HttpFailure):  # its text says what failed, where
                reason = str(exc) or type(exc).__name__
            else:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.last_failure = mask(reason)
            return Result(Outcome.RETRY, None, self.last_failure,
                          elapsed=time.monotonic() - started), None
        elapsed = time.monotonic() - started
        self.last_connection_failure = None
        status = response.status
        # the body only matters to explain a failure, or as a policy call's answer
        wanted = auth or not 200 <= status < 300
        text = response.body.decode(errors="replace") if wanted else ""
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        outcome, reason = classify(status), ""
        if status == 404:
            outcome, reason, text = self._not_found(method, url, text, not_found, beat)
        elif beat is not None and 200 <= status < 300:
            self._beats_answered.add(beat)
        if outcome is Outcome.RETRY:
            self.last_failure = mask(f"HTTP {status} {text[:BODY_EXCERPT]}".strip())
        if auth and 200 <= status < 300:
            try:
                answer = json.loads(text)
            except ValueError:
                answer = None
            text = ""
        return Result(
            outcome,
            status,
            mask(text[:BODY_EXCERPT]) if text else "",
            retry_after=retry_after if status == 429 else None,
            reason=reason,
            elapsed=elapsed,
        ), answer

    def _not_found(self, method: str, url: str, text: str, not_found: str,
                   beat: str | None) -> tuple[Outcome, str, str]:
        """Who said 404: ilert (REJECTED with ``not_found`` as the reason) or a wrong URL
        (RETRY); also the detail to keep."""
        if _ilert_error(text):
            return Outcome.REJECTED, not_found, text
        if beat is not None and beat in self._beats_answered:
            # ilert's beat host answers a deleted key's HEAD with a bare 404
            return (Outcome.REJECTED, not_found, text or "ilert knows no heartbeat with this "
                    "key (404 from a heartbeat URL that answers other keys)")
        # not ilert saying "no such thing": a wrong --ilert_api_url, beat URL or proxy
        which, shown = "API URL", mask(url)
        if beat is not None:  # the key is the last segment: never in clear, whatever its shape
            which, shown = "heartbeat URL", f"{beat}/{mask_key(url[len(beat) + 1:])}"
        logger.error("%s %s answered 404 without ilert's error body: is the %s right (it "
                     "ends in /api)? %s", method, shown, which, self._wrong_url_then)
        return Outcome.RETRY, "", text


def _ilert_error(text: str) -> bool:
    """True for ilert's own error body ``{"status", "message", "code"}`` (or a part of it)."""
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and "message" in body and ("code" in body or "status" in body)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
