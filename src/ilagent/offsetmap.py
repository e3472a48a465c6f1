"""The finished-offset map carried in a Kafka commit's metadata (pure).

A partition's commit position is its first unfinished offset; when one alert's event waits
(a 429, a long outage of one key) while later ones are delivered, everything after it would be
sent again after a restart, a deploy or a rebalance — resolved alerts opened again. So every
commit carries, in its metadata string, which offsets above the position are finished
(delivered, filtered or dead-lettered already); the partition's next owner skips them.

The encoding, version 1::

    ilagent:1:<position>:<payload>

``position`` is the committed offset the map belongs to, in decimal; a map whose position is
not the committed offset (a manual offset reset, a commit by another tool) is ignored, as is any
metadata that does not start with ``ilagent:1:``. ``payload`` is URL-safe base64 without padding
of one codec byte and the data: ``r`` (raw) or ``z`` (zlib-compressed, used when shorter). The
data is a sequence of unsigned LEB128 varints, two per finished range: the gap from the end of
the previous range (from ``position`` for the first) to the range's start, then the range's
length (at least 1). An empty payload means nothing above the position is finished.

The whole string is at most :data:`MAX_METADATA` characters: the broker refuses a whole commit
whose metadata is longer than ``offset.metadata.max.bytes`` (4,096 by default). When the ranges
do not fit, the map lists only as many of the lowest ranges as fit: offsets beyond the last
listed range count as unfinished, so they are sent again rather than skipped — a shorter map
costs duplicates, never a lost event. (Confluent's Parallel Consumer stops consuming the
partition when its map does not fit; here the partition keeps flowing.)
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Sequence

from ilagent.offsets import Ranges

MAGIC = "ilagent"
VERSION = 1
PREFIX = f"{MAGIC}:{VERSION}:"
MAX_METADATA = 4000
_MAX_DATA = 1 << 20  # a decoded map larger than this is not ours (or a zlib bomb)
_MAX_OFFSET = (1 << 63) - 1


def encode(position: int, finished: Sequence[tuple[int, int]], *,
           limit: int = MAX_METADATA) -> str:
    """The metadata string for a commit at ``position`` with these finished ranges above it.

    ``finished`` holds sorted, disjoint ``[start, end)`` ranges above ``position``. The result
    is at most ``limit`` characters, dropping the highest ranges when they do not all fit.
    """
    ranges = [(start, end) for start, end in finished if end > start and start > position]
    text = _encode(position, ranges)
    if len(text) <= limit:
        return text
    low, high = 0, len(ranges)  # the most ranges that fit: low fits, high does not
    while high - low > 1:
        middle = (low + high) // 2
        if len(_encode(position, ranges[:middle])) <= limit:
            low = middle
        else:
            high = middle
    return _encode(position, ranges[:low])


def decode(metadata: str | None, position: int) -> Ranges:
    """The finished ranges a commit's metadata lists above ``position``.

    Empty for metadata that is not ours, of another version, for another position, or corrupt:
    then nothing is skipped and the partition is read again from its position.
    """
    if not metadata or not metadata.startswith(PREFIX):
        return []
    head, _, payload = metadata[len(PREFIX):].partition(":")
    if not head.isdigit() or int(head) != position:
        return []
    if not payload:
        return []
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        return []
    if not raw:
        return []
    codec, data = raw[:1], raw[1:]
    if codec == b"z":
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(data, _MAX_DATA)
        except zlib.error:
            return []
        if inflater.unconsumed_tail or not inflater.eof:
            return []
    elif codec != b"r":
        return []
    numbers = _varints(data)
    if numbers is None or len(numbers) % 2:
        return []
    ranges: Ranges = []
    end = position
    for gap, length in zip(numbers[::2], numbers[1::2], strict=True):
        start = end + gap
        end = start + length
        if gap < 1 or length < 1 or end > _MAX_OFFSET:
            return []
        ranges.append((start, end))
    return ranges


def _encode(position: int, ranges: Sequence[tuple[int, int]]) -> str:
    if not ranges:
        return f"{PREFIX}{position}:"
    data = bytearray()
    end = position
    for start, stop in ranges:
        _put_varint(data, start - end)
        _put_varint(data, stop - start)
        end = stop
    raw = b"r" + bytes(data)
    packed = b"z" + zlib.compress(bytes(data), 9)
    body = packed if len(packed) < len(raw) else raw
    return f"{PREFIX}{position}:{base64.urlsafe_b64encode(body).rstrip(b'=').decode()}"


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _varints(data: bytes) -> list[int] | None:
    """The varints of ``data``; None when it ends inside one or one is absurdly long."""
    numbers: list[int] = []
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 63:
                return None
            continue
        numbers.append(value)
        value = shift = 0
    return None if shift else numbers
