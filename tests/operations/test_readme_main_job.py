"""The README's main job, pasted into a clean shell on a fresh copy of the project.

The shell is ``env -i HOME=<empty dir> PATH=/usr/local/bin:/usr/bin:/bin bash`` (no ``/usr/sbin``, nothing of
ours in the environment) reading the job on stdin, as a paste would give it. When ``cvault dev`` cannot start, the
job stops as soon as it exits, with its reason from the log; when it can, the job prints its two lines.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cvault_command import PROJECT_ROOT
from vault.errors import Unavailable
from vault.storage.embedded import ensure_system_user, find_useradd

CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
# Generous bounds on a broken run: the job's own wait loop gives up only after 120 s.
INSTALL_AND_RUN = 600


def main_job() -> str:
    found = re.search(r"^Main job .*?```sh\n(.*?)\n```", (PROJECT_ROOT / "README.md").read_text(), re.S | re.M)
    assert found is not None, "README.md has no main job block"
    return found[1] + "\n"


def fresh_copy(target: Path) -> Path:
    """The project's files as a clone has them (tracked and new, not ignored), nothing built."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def paste(project: Path, home: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["env", "-i", f"HOME={home}", f"PATH={CLEAN_PATH}", "bash"],
        input=main_job(),
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    # Not under pytest's base temp: as root, pgserver opens the directories above the copy to its own user,
    # and every pytest session that starts meanwhile closes pytest-of-root again (mode 0700).
    directory = Path(tempfile.mkdtemp(prefix="cvault-readme-"))
    try:
        yield fresh_copy(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_the_job_stops_with_the_reason_when_cvault_dev_cannot_start(project: Path, tmp_path: Path) -> None:
    (project / ".cvault-dev").mkdir(mode=0o700)
    (project / ".cvault-dev/pgdata").write_text("not a data directory\n")  # the embedded server cannot start here
    try:
        done = paste(project, tmp_path, INSTALL_AND_RUN)
        exited = _gone(int((project / ".cvault-dev.pid").read_text()))
    finally:
        _stop_dev(project)
        shutil.rmtree(project / ".cvault-dev")
    assert "DB_URL" not in done.stdout
    # The dev log's last lines, with cvault dev's own reason, from the job's wait loop.
    assert "the embedded PostgreSQL in" in done.stderr and "did not start: initdb exited" in done.stderr, done.stderr
    assert "no store token" not in done.stderr, done.stderr
    assert exited


def _stop_dev(project: Path) -> None:
    """``cvault dev`` stopped, whatever became of the job: a paste that timed out leaves it running in the
    background, holding ports 8201 and 8202 (the compose test's too). It gets a minute to stop on the job's
    SIGINT, then SIGTERM, then SIGKILL."""
    try:
        pid = int((project / ".cvault-dev.pid").read_text())
    except (FileNotFoundError, ValueError):
        return  # the job did not get as far as starting it
    for signal_number in (0, signal.SIGTERM, signal.SIGKILL):
        if signal_number:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal_number)
        for _ in range(600 if signal_number == 0 else 100):
            if _gone(pid):
                return
            time.sleep(0.1)


def _gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def test_the_job_prints_its_two_lines_in_a_clean_shell(project: Path, tmp_path: Path) -> None:
    try:
        done = paste(project, tmp_path, INSTALL_AND_RUN)
    finally:
        # The job ends with SIGINT to cvault dev; it stops the embedded server on its way out.
        _stop_dev(project)
    assert done.stdout.splitlines()[-2:] == ["default/db/url: version 1 written", "DB_URL=postgres://app:s3cret@db/app"]
    assert done.returncode == 0, done.stderr
    # The exports are absolute: they work from another directory, and a client reads only what it needs.
    exports = dict(re.findall(r"^export (CVAULT_\w+)=(.*)$", (project / ".cvault-dev.log").read_text(), re.M))
    assert Path(exports["CVAULT_MASTER_KEY_FILE"]).is_absolute()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs a system user for the embedded PostgreSQL")
def test_root_without_sbin_in_path_finds_useradd_or_says_what_is_missing() -> None:
    assert find_useradd(CLEAN_PATH) is not None  # /usr/sbin/useradd, outside the clean PATH
    with pytest.raises(Unavailable, match=r"no system user 'cvault-no-such-user'.*nor useradd to create one"):
        ensure_system_user("cvault-no-such-user", path="/nonexistent", sbin=())
