"""Every refusal of the daemon's HTTP server: JSON in ilert's shape ``{status, message, code}``
(:func:`refusal`), and, where nothing else says so, one WARNING line naming whom it refused and
why (:func:`refuse`).

A refused event or ping does not reach ilert unless its sender tries again, and many senders
never look at the answer (a webhook fired and forgotten, a script in a cron job): the line is
where the person on call finds out, at the default log level, without ``-vvv``'s line for every
request. Lines of one kind (status and code) go through the log's repeat filter: the first at
once, then one per 30 s saying how many more there were, so a client that posts garbage in a
loop, or a scanner, cannot fill the log. Logged: the access rules' 401, 403 and 429; the
intake's 400, 413 and 415; the heartbeat proxy's refusals before sending; a POST (any method but
GET and HEAD) to a wrong URL. Not logged, because the refusal tells of no lost event or is said
in a line of its own: a GET or HEAD of a wrong URL (a browser's ``/favicon.ico``, a scanner), a
query of ``/trace`` (its reader sees the answer), a full or failing spool, and ilert's own
refusal of a ping the proxy passed on.

The line names the client's address, the method and the path, an integration key in it masked;
never a body or a header, so neither an event's contents nor a bearer token is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

from aiohttp import web

from ilagent.logs import mask_key

logger = logging.getLogger(__name__)


def refusal(status: int, code: str, message: str,
            headers: Mapping[str, str] | None = None) -> web.Response:
    """The answer ``status`` with ilert's error body, no line logged."""
    return web.json_response({"status": status, "message": message, "code": code},
                             status=status, headers=headers)


def refuse(request: web.BaseRequest, status: int, code: str, message: str,
           headers: Mapping[str, str] | None = None) -> web.Response:
    """:func:`refusal`, and the WARNING line that says so (summarised per status and code)."""
    # status and code are ours (never the client's): they make the line's kind
    logger.warning(f"refused %s %s from %s: {status} {code}: %s", request.method,
                   shown_path(request), request.remote or "?", message)
    return refusal(status, code, message, headers)


def retry_after(seconds: float) -> dict[str, str]:
    """The ``Retry-After`` header for a wait of ``seconds``: whole seconds, at least 1."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def shown_path(request: web.BaseRequest) -> str:
    """The request's path with the ``{key}`` segment of its route masked."""
    path = request.path
    # a BaseRequest answered before routing has no match_info
    key = request.match_info.get("key") if isinstance(request, web.Request) else None
    return path.replace(key, mask_key(key)) if key else path
