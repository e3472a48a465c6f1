"""A small reader of the project's Dockerfile, and a runner of its install steps on this machine.

No container runtime is reachable here, so the test runs the ``pip`` steps of each stage as they
stand: ``WORKDIR`` and ``COPY`` (from the build context) are laid out under a scratch folder,
``ARG`` values may be overridden to point into it, and each ``RUN`` that calls ``pip`` runs in
``sh -c`` as Docker would (its ``--mount`` flags dropped: the mounted paths are the overridden
ARGs). Anything else (``useradd``) is left to Docker.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
# what would let the suite's own interpreter settings into a clean install
LEAKY = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_FIND_LINKS", "PIP_INDEX_URL")


def clean_environment() -> dict[str, str]:
    """This process's environment without what points Python at the suite's own packages."""
    return {k: v for k, v in os.environ.items() if k not in LEAKY}


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword (upper case), its arguments, and its stage (0 = first)."""

    keyword: str
    arguments: str
    stage: int


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The instructions in order, continuation lines joined, comments left out."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found, stage = [], -1
    for line in text.splitlines():
        if not line.strip():
            continue
        keyword, _, arguments = line.strip().partition(" ")
        keyword = keyword.upper()
        stage += keyword == "FROM"
        found.append(Instruction(keyword, arguments.strip(), stage))
    return found


def arg_defaults(path: Path = DOCKERFILE) -> dict[str, str]:
    """Every ``ARG NAME=default`` (the last one of a name wins)."""
    defaults = {}
    for item in instructions(path):
        if item.keyword == "ARG":
            name, _, value = item.arguments.partition("=")
            defaults[name] = value
    return defaults


def mounts(command: str) -> list[dict[str, str]]:
    """The ``--mount=`` options at the start of a ``RUN``, as key/value pairs."""
    return [
        dict(part.split("=", 1) for part in m.split(","))
        for m in re.findall(r"--mount=(\S+)", command)
    ]


def run_install_steps(
    scratch: Path, overrides: dict[str, str], *, python: str, timeout: float
) -> list[str]:
    """Run every ``RUN`` that calls pip, stage by stage, with ``WORKDIR`` and ``COPY`` laid out
    under ``scratch`` and the ARGs in ``overrides``; ``python`` is the image's ``python``.
    Returns the commands it ran; raises ``CalledProcessError`` when one fails."""
    bin_dir = scratch / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "python").symlink_to(python)
    ran: list[str] = []
    env: dict[str, str] = {}
    workdir = scratch
    for item in instructions():
        if item.keyword == "FROM":
            env, workdir = {}, scratch
        elif item.keyword == "ARG":
            name, _, value = item.arguments.partition("=")
            env[name] = overrides.get(name, value)
        elif item.keyword == "WORKDIR":
            workdir = scratch / item.arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif item.keyword == "COPY" and "--from" not in item.arguments:
            *sources, target = shlex.split(item.arguments)
            _copy(sources, workdir / target, into_folder=len(sources) > 1 or target.endswith("/"))
        elif item.keyword == "RUN" and re.search(r"\bpip\b", item.arguments):
            command = re.sub(r"^(--mount=\S+\s+)+", "", item.arguments)
            subprocess.run(
                ["sh", "-c", command],
                cwd=workdir,
                check=True,
                timeout=timeout,
                env={
                    **clean_environment(),
                    **env,
                    "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                },
            )
            ran.append(command)
    return ran


def _copy(sources: list[str], target: Path, *, into_folder: bool) -> None:
    """``COPY a b dir/`` (into a folder) or ``COPY a dest`` from the build context."""
    for source in sources:
        origin = ROOT / source
        into = target / origin.name if into_folder else target
        if origin.is_dir():
            shutil.copytree(
                origin, into, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            into.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, into)
