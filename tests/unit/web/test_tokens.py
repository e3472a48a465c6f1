"""The bearer tokens of ``--http_token_file``: one per line, re-read when the content changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ilagent.web.tokens import TokenFile, parse_tokens


def test_one_token_per_line_without_comments_blank_lines_or_padding() -> None:
    """`#` lines and blank lines are ignored, each line is stripped (CRLF files too)."""
    text = "# rotated 2024-05-01\nfirst-token\n\n  second-token  \r\n#old-token\r\n"
    assert parse_tokens(text) == frozenset({"first-token", "second-token"})
    assert parse_tokens("# nothing yet\n\n") == frozenset()


def test_the_file_is_read_again_only_when_its_content_changed(tmp_path: Path) -> None:
    """The first read gives the tokens, an unchanged file gives None, new content the new set
    (the same mtime does not hide a change: files are compared by content)."""
    path = tmp_path / "tokens"
    path.write_text("one\n")
    tokens = TokenFile(str(path))
    assert tokens.read() == frozenset({"one"})
    assert tokens.read() is None
    stat = path.stat()
    path.write_text("two\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert tokens.read() == frozenset({"two"})
    assert tokens.read() is None


def test_a_kubernetes_style_symlink_swap_is_seen(tmp_path: Path) -> None:
    """A mounted Secret changes by swapping the `..data` symlink to a new directory: the next
    read follows it."""
    for version, token in (("..v1", "old-token"), ("..v2", "new-token")):
        (tmp_path / version).mkdir()
        (tmp_path / version / "token").write_text(token + "\n")
    (tmp_path / "..data").symlink_to("..v1")
    (tmp_path / "token").symlink_to("..data/token")
    tokens = TokenFile(str(tmp_path / "token"))
    assert tokens.read() == frozenset({"old-token"})
    (tmp_path / "..data_tmp").symlink_to("..v2")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    assert tokens.read() == frozenset({"new-token"})


def test_a_file_that_is_gone_raises_and_keeps_what_was_read(tmp_path: Path) -> None:
    """A missing file is an OSError for the caller (which keeps the tokens it has); once it is
    back with the same content, nothing changed."""
    path = tmp_path / "tokens"
    path.write_text("kept\n")
    tokens = TokenFile(str(path))
    assert tokens.read() == frozenset({"kept"})
    path.unlink()
    with pytest.raises(OSError):
        tokens.read()
    path.write_text("kept\n")
    assert tokens.read() is None
