"""A drill in words: one line per source for the log, each stage with its time for
``ilagent drill`` (pure)."""

from __future__ import annotations

from ilagent.drills.rounds import STAGES, Round, Stage, Trace, Verdict
from ilagent.logs import mask


def outcome(trace: Trace) -> str:
    """One source's drill in a few words: ``passed in 0.21 s``, ``failed at delivered: …``."""
    if trace.skipped:
        return f"skipped: {trace.why}"
    if trace.failed is not None:
        return f"failed at {trace.failed}: {mask(trace.why)}"
    seconds = trace.seconds
    return "still open" if seconds is None else f"passed in {seconds:.2f} s"


def summary(drill: Round) -> str:
    """The log line of a finished drill."""
    parts = "; ".join(f"{trace.source} {outcome(trace)}" for trace in drill.traces.values())
    return f"fire drill {drill.id} {drill.verdict}: {parts}"


def stage_lines(drill: Round) -> list[str]:
    """Each source's stages with their times (seconds after the drill started), then the
    failure or the skip."""
    lines = [f"fire drill {drill.id}"]
    width = max((len(source) for source in drill.traces), default=0)
    for trace in drill.traces.values():
        name = trace.source.ljust(width)
        if trace.skipped:
            lines.append(f"  {name}  skipped    {trace.why}")
            continue
        for stage in STAGES:
            at = trace.times.get(stage)
            if trace.failed is stage:
                lines.append(f"  {name}  {stage.value:<9}  FAILED at {trace.failed_at or 0:.3f} s:"
                             f" {mask(trace.why)}")
                break
            if at is None:
                break
            lines.append(f"  {name}  {stage.value:<9}  {at:.3f} s{_note(trace, stage)}")
    verdict = drill.verdict
    if verdict is Verdict.PASSED:
        slowest = max((t.seconds or 0.0) for t in drill.traces.values() if not t.skipped)
        lines.append(f"passed in {slowest:.3f} s")
    elif verdict is Verdict.SKIPPED:
        lines.append("nothing proven: every source was skipped")
    else:
        failed = [f"{t.source} at {t.failed}" for t in drill.traces.values()
                  if t.failed is not None]
        lines.append(f"failed: {', '.join(failed)}")
    return lines


def _note(trace: Trace, stage: Stage) -> str:
    if stage is Stage.SENT and trace.where:
        return f"  {mask(trace.where)}"
    if stage is Stage.MAPPED and trace.detail:
        return f"  {trace.detail}"
    return ""
