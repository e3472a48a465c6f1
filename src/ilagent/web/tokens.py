"""The bearer tokens of ``--http_token_file``: one a line, read again when the content changes.

Kubernetes updates a mounted Secret by writing a new directory and swapping the ``..data``
symlink to it, so the file the daemon was given never changes in place and watching it for
writes misses the rotation. The file is therefore polled and compared by content: every
:data:`POLL_INTERVAL` seconds its bytes are read (following the symlinks anew) and compared with
the last read; only a difference yields a new set of tokens. A file that cannot be read keeps
the tokens read before (a swap in progress must not lock every client out), and says so.
"""

from __future__ import annotations

from pathlib import Path

POLL_INTERVAL = 10.0


def parse_tokens(text: str) -> frozenset[str]:
    """The tokens of a file's text: each line stripped, blank lines and ``#`` lines left out."""
    return frozenset(line.strip() for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith("#"))


class TokenFile:
    """One token file, remembered by its last content. Tokens are secrets: never in a repr."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._content: bytes | None = None

    def __repr__(self) -> str:
        return f"TokenFile({self.path!r})"

    def read(self) -> frozenset[str] | None:
        """The tokens when the content differs from the last read (the first read always
        does), None when it is the same; raises ``OSError`` when the file cannot be read."""
        content = Path(self.path).read_bytes()
        if content == self._content:
            return None
        self._content = content
        return parse_tokens(content.decode("utf-8", "replace"))
