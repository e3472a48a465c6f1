"""What ``ilagent replay`` prints: per alert source the events, alerts opened, accepted, resolved
and still open under the candidate and the baseline, then each message they treat differently
(text, or one JSON object with ``--json``). Integration keys are masked everywhere, and the
whole output goes through :func:`ilagent.logs.hide_secrets` as a log line would."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from ilagent.events import EVENT_TYPES
from ilagent.logs import hide_secrets, mask_key
from ilagent.mapping.replaying import (
    Book,
    Difference,
    Outcome,
    Sent,
    Source,
    source_changes,
)

if TYPE_CHECKING:
    from ilagent.commands.replay_send import Sending

SHOWN_OPEN = 10  # open alerts named per source in the text; the rest are counted
FLAG_ROUTE = "default"


@dataclass
class Replayed:
    """One replay: the range, the two configs' books and the messages they differ on."""

    topics: tuple[str, ...]
    since: int
    until: int | None
    candidate: str
    baseline: str
    candidate_book: Book
    baseline_book: Book
    differences: list[Difference]
    sending: Sending | None = field(default=None)


def write_text(replayed: Replayed, out: TextIO) -> None:
    """The report in plain words."""
    lines = [f"replayed {replayed.candidate_book.messages} messages of "
             f"{', '.join(replayed.topics)} from {_time(replayed.since)} to "
             f"{_time(replayed.until) if replayed.until is not None else 'the end'}",
             f"candidate: {replayed.candidate}", f"baseline:  {replayed.baseline}"]
    books = (("candidate", replayed.candidate_book), ("baseline", replayed.baseline_book))
    keys = dict.fromkeys([*replayed.candidate_book.sources, *replayed.baseline_book.sources])
    for key in keys:
        lines += ["", f"alert source {mask_key(key)}"]
        told = {name: _source_words(book.sources.get(key)) for name, book in books}
        lines.append(f"  candidate: {told['candidate']}")
        lines.append("  baseline:  " + ("the same" if told["baseline"] == told["candidate"]
                                        else told["baseline"]))
    lines.append("")
    for name, book in books:
        dead = ", ".join(f"{reason} {n}" for reason, n in sorted(book.dead.items()))
        lines.append(f"{name + ':':<11}{book.filtered} filtered, {sum(book.dead.values())} "
                     f"dead-lettered{f' ({dead})' if dead else ''}")
    lines.append("")
    if not replayed.differences:
        lines.append("no difference: the candidate treats every message as the baseline does")
    else:
        lines.append(f"{len(replayed.differences)} messages differ:")
        for difference in replayed.differences:
            where = difference.where
            lines.append(f"  {where['topic']}:{where['partition']}:{where['offset']}")
            lines.append(f"    baseline:  {outcome_words(difference.baseline)}")
            lines.append(f"    candidate: {outcome_words(difference.candidate)}"
                         + _changed(difference))
    if replayed.sending is not None:
        lines += ["", replayed.sending.words()]
    out.write(hide_secrets("\n".join(lines)) + "\n")


def write_json(replayed: Replayed, out: TextIO) -> None:
    """The report as one JSON object."""
    changes = source_changes(replayed.baseline_book, replayed.candidate_book)
    document: dict[str, Any] = {
        "topics": list(replayed.topics), "since": _time(replayed.since),
        "until": _time(replayed.until) if replayed.until is not None else None,
        "messages": replayed.candidate_book.messages,
        "candidate": {"config": replayed.candidate, **_book(replayed.candidate_book)},
        "baseline": {"config": replayed.baseline, **_book(replayed.baseline_book)},
        "sourceChanges": [{"integrationKey": mask_key(key), **{
            name: {"baseline": before, "candidate": after}
            for name, (before, after) in changed.items()}} for key, changed in changes.items()],
        "differences": [{**d.where, "baseline": outcome_json(d.baseline),
                         "candidate": outcome_json(d.candidate)} for d in replayed.differences],
    }
    if replayed.sending is not None:
        document["sent"] = replayed.sending.as_json()
    out.write(hide_secrets(json.dumps(document, ensure_ascii=False)) + "\n")


def outcome_words(outcome: Outcome) -> str:
    """One message's outcome in plain words."""
    parts = [_sent_words(sent) for sent in outcome.sent]
    parts += [f"dead letter{f' of route {d.route}' if d.route else ''}: {d.reason} "
              f"({d.detail})" for d in outcome.dead]
    return "; ".join(parts) or f"filtered ({outcome.filtered})"


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """One message's outcome for ``--json``: events (keys masked), dead letters, or filtered."""
    return {"events": [{"route": s.route, "event": masked(s.event)} for s in outcome.sent],
            "deadLetters": [{"route": d.route, "reason": d.reason, "detail": d.detail}
                            for d in outcome.dead],
            **({"filtered": outcome.filtered} if not outcome.sent and not outcome.dead else {})}


def masked(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with its integration key masked."""
    return {**event, "integrationKey": mask_key(str(event.get("integrationKey", "")))}


def _sent_words(sent: Sent) -> str:
    route = f" by route {sent.route}" if sent.route != FLAG_ROUTE else ""
    return (f"{sent.event_type} {sent.alert_key or '(no alert key)'} to "
            f"{mask_key(sent.integration_key)}{route}")


def _changed(difference: Difference) -> str:
    """For events that read alike, which of their fields differ."""
    before, after = difference.baseline.sent, difference.candidate.sent
    if len(before) != len(after) or difference.baseline.dead != difference.candidate.dead or any(
            _sent_words(b) != _sent_words(a) for b, a in zip(before, after, strict=True)):
        return ""
    fields = sorted({name for b, a in zip(before, after, strict=True)
                     for name in {*b.event, *a.event} if b.event.get(name) != a.event.get(name)})
    return f" (other {', '.join(fields)})" if fields else ""


def _source_words(source: Source | None) -> str:
    if source is None:
        return "nothing"
    numbers = source.summary()
    types = ", ".join(f"{source.events[kind]} {kind}" for kind in EVENT_TYPES
                      if source.events[kind])
    still = [alert for alert in source.still_open if alert.alert_key is not None]
    keyless = len(source.still_open) - len(still)
    names = ", ".join([f"{alert.alert_key} ({alert.status})" for alert in still[:SHOWN_OPEN]]
                      + ([f"{len(still) - SHOWN_OPEN} more"] if len(still) > SHOWN_OPEN else [])
                      + ([f"{keyless} without an alert key"] if keyless else []))
    unmatched = (f"; {numbers['unmatched']} ACCEPT/RESOLVE without an open alert"
                 if numbers["unmatched"] else "")
    return (f"{numbers['events']} events ({types}); {numbers['opened']} alerts opened, "
            f"{numbers['accepted']} accepted, {numbers['resolved']} resolved, "
            f"{numbers['stillOpen']} still open{': ' + names if names else ''}"
            f"{unmatched}")


def _book(book: Book) -> dict[str, Any]:
    return {"filtered": book.filtered, "deadLetters": dict(sorted(book.dead.items())),
            "sources": [{"integrationKey": mask_key(key), **source.summary(),
                         "alerts": [{"alertKey": a.alert_key, "status": a.status,
                                     "events": a.events} for a in source.alerts]}
                        for key, source in book.sources.items()]}


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")
