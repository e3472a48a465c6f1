"""MkDocs hooks of the docs site (``hooks:`` in mkdocs.yml).

The option reference ``reference/options.md`` is not a file in ``docs/``: it is generated from
the argument parser on every build (:mod:`docs_options`), so it always matches the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_options import render

OPTIONS_PAGE = "reference/options.md"


def on_files(files: Files, config: Any) -> Files:
    """Add the generated option reference to the site's files."""
    files.append(File.generated(config, OPTIONS_PAGE, content=render()))
    return files
