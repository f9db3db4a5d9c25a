"""``cvault run --watch``, ``--env-file`` and ``--mount``, end to end against ``cvault dev`` (issue 16).

The org discharge lives only ``LIFETIME`` seconds here (``CVAULT_ORG_DISCHARGE_TTL``),
so a watcher running for several lifetimes shows the discharge being renewed
before it lapses: every poll keeps working and none reports an error.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cvault_command import cvault_command
from tests.support.dev_world import DevWorld, make_dev_world

LIFETIME = 6
INTERVAL = 1.0
BOUND = 20.0  # generous: the machine is shared; the promised figure is one interval


@pytest.fixture(scope="module")
def w(postgres_server: str, template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWorld]:
    yield from make_dev_world(
        postgres_server, template_database, tmp_path_factory, dev_env={"CVAULT_ORG_DISCHARGE_TTL": str(LIFETIME)}
    )


def _wait_for(check: Callable[[], bool], bound: float = BOUND) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > bound:
            raise AssertionError("timed out")
        time.sleep(0.1)
    return time.monotonic() - started


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _rotate(w: DevWorld, name: str, value: str) -> None:
    r = w.cvault("secrets", "rotate", name, "--vault", "prod", stdin=value)
    assert r.status == 0, r
    r = w.cvault("secrets", "rotate", name, "--vault", "prod", "--promote")
    assert r.status == 0, r


def _watch(w: DevWorld, tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp / "cvault-run.err"
    process = subprocess.Popen(
        cvault_command("run", "--vault", "prod", "--only", "db/url", *args),
        env=w.wl,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    return process, log


def _org_discharges(w: DevWorld) -> int:
    """Org discharges the authority has handed out so far (its access log, in `cvault dev`'s stderr)."""
    return (w.tmp / "dev.stderr").read_text().count("POST /org/.well-known/macfly/3p 201")


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(30)


def test_rotate_and_promote_restart_the_child_and_the_discharge_never_lapses(w: DevWorld, tmp_path: Path) -> None:
    out = tmp_path / "child.log"
    script = f'echo "$$ $DB_URL" >> {out}; exec sleep 600'
    process, log = _watch(w, tmp_path, "--watch", "--interval", str(INTERVAL), "--", "sh", "-c", script)
    try:
        _wait_for(lambda: len(_lines(out)) == 1)
        fetched = _org_discharges(w)
        # Until the org discharge was fetched anew twice (only the watcher runs meanwhile), more than a
        # discharge lifetime with a poll every second: all answered, nothing restarted.
        _wait_for(lambda: _org_discharges(w) - fetched >= 2, bound=3 * LIFETIME + BOUND)
        assert process.poll() is None and len(_lines(out)) == 1
        assert "cannot check" not in log.read_text(), log.read_text()
        _rotate(w, "db/url", "postgres://app:rotated-1@db/app")
        took = _wait_for(lambda: len(_lines(out)) == 2)
        assert took < INTERVAL + BOUND
        first_pid, second = _lines(out)[0].split()[0], _lines(out)[1]
        assert second.endswith("postgres://app:rotated-1@db/app") and not second.startswith(first_pid)
        assert "new version of db/url; restarting sh" in log.read_text()
        assert "rotated-1" not in log.read_text()
    finally:
        status = _stop(process)
    assert status == 128 + signal.SIGTERM  # the child's end (killed by the forwarded SIGTERM) is cvault's
    assert "cannot check" not in log.read_text(), log.read_text()


def test_signal_mode_rewrites_the_file_and_signals_instead_of_restarting(w: DevWorld, tmp_path: Path) -> None:
    out, env_file = tmp_path / "child.log", tmp_path / "app.env"
    script = f'trap "cat {env_file} >> {out}" HUP; echo start >> {out}; while true; do sleep 0.2; done'
    process, _log = _watch(
        w, tmp_path, "--watch", "--interval", str(INTERVAL), "--signal", "HUP", "--env-file", str(env_file),
        "--", "sh", "-c", script,
    )  # fmt: skip
    try:
        _wait_for(lambda: _lines(out) == ["start"])
        assert env_file.stat().st_mode & 0o777 == 0o600
        _rotate(w, "db/url", "postgres://app:rotated-2@db/app")
        _wait_for(lambda: any("rotated-2" in line for line in _lines(out)))
        assert _lines(out).count("start") == 1  # signalled, not restarted
        assert 'DB_URL="postgres://app:rotated-2@db/app"' in _lines(out)
    finally:
        _stop(process)
    assert not env_file.exists()


def test_the_childs_exit_status_is_cvault_runs(w: DevWorld, tmp_path: Path) -> None:
    process, _ = _watch(w, tmp_path, "--watch", "--interval", "1", "--", "sh", "-c", "exit 7")
    assert process.wait(60) == 7


def test_env_file_and_mount_are_private_and_removed_on_exit(w: DevWorld, tmp_path: Path) -> None:
    env_file, mount = tmp_path / "app.env", tmp_path / "secrets.json"
    script = f"stat -c %a {env_file} {mount}; cat {env_file} {mount}"
    r = w.cvault(
        "run", "--vault", "prod", "--only", "api/key", "--env-file", str(env_file), "--mount", str(mount),
        "--", "sh", "-c", script, env=w.wl,
    )  # fmt: skip
    assert r.status == 0, r
    assert r.out.splitlines()[:2] == ["600", "600"]
    assert 'API_KEY="k-8f3a9c"' in r.out
    assert json.loads(r.out[r.out.index("{") :]) == {"api/key": "k-8f3a9c"}
    assert not env_file.exists() and not mount.exists()


def test_watch_options_are_checked_before_anything_starts(w: DevWorld) -> None:
    r = w.cvault("run", "--watch", "--interval", "0", "--", "true", env=w.wl)
    assert r.status == 2 and "--interval" in r.err
    r = w.cvault("run", "--watch", "--signal", "NOPE", "--", "true", env=w.wl)
    assert r.status == 2 and "not a signal name" in r.err
    r = w.cvault("run", "--signal", "HUP", "--", "true", env=w.wl)
    assert r.status == 2 and "--signal goes with --watch" in r.err


def test_env_file_holds_only_the_secrets_and_the_mapped_names(w: DevWorld, tmp_path: Path) -> None:
    env_file, mapping = tmp_path / "app.env", tmp_path / "env.map"
    mapping.write_text("api/key=SERVICE_KEY\n")
    r = w.cvault(
        "run", "--vault", "prod", "--map", str(mapping), "--env-file", str(env_file),
        "--", "sh", "-c", f"cat {env_file}", env={**w.wl, "UNRELATED": "x"},
    )  # fmt: skip
    assert r.status == 0, r
    names = sorted(line.split("=", 1)[0] for line in r.out.splitlines())
    assert names == ["DB_URL", "SERVICE_KEY"]  # not PATH, HOME, UNRELATED nor the CVAULT_* URLs


def test_watch_polls_versions_and_reads_values_only_when_one_changed(w: DevWorld, tmp_path: Path) -> None:
    assert w.cvault("secrets", "set", "watch/poll", "--vault", "prod", stdin="first").status == 0
    r = w.cvault("store", "tokens", "mint", "--mask", "r", "--vault", "prod", "--json")
    assert r.status == 0, r
    minted = json.loads(r.out)
    env = {**w.wl, "CVAULT_STORE_TOKEN": minted["token"]}

    def events(action: str) -> int:
        r = w.cvault("audit", "query", "--token", minted["id"], "--action", action, "--json")
        assert r.status == 0, r
        return len(json.loads(r.out))

    out, log = tmp_path / "child.log", tmp_path / "cvault-run.err"
    script = f'echo "$WATCH_POLL" >> {out}; exec sleep 600'
    process = subprocess.Popen(
        cvault_command(
            "run", "--vault", "prod", "--only", "watch/poll", "--watch", "--interval", str(INTERVAL),
            "--", "sh", "-c", script,
        ),
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    try:
        _wait_for(lambda: _lines(out) == ["first"])
        _wait_for(lambda: events("secrets.versions") >= 3)
        assert events("secrets.read") == 1  # the start only: polls read no value
        _rotate(w, "watch/poll", "second")
        _wait_for(lambda: _lines(out) == ["first", "second"])
        assert events("secrets.read") == 2  # one read, for the version that changed
    finally:
        _stop(process)
    assert "cannot check" not in log.read_text(), log.read_text()
