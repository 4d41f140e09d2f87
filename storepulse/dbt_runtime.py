"""Where the dbt project is, which dbt runs it, and where dbt may write.

- The project: ``dbt_project/`` of a checkout, else the copy a wheel ships as
  ``storepulse/dbt_project`` (``setup.py`` puts it there), so ``pip install .`` and images
  without the source tree work.
- The executable: the ``dbt`` installed beside the running interpreter, so a virtualenv's
  ``bin/storepulse`` works without activating it (and under pipx).
- Everything dbt writes (manifest, run artifacts, logs) goes under
  ``$STOREPULSE_HOME/dbt/``, never into the checkout or the installed package.
- The manifest is parsed once per version of the project: a fingerprint of the project's
  files and dbt's version sits next to it, and a file lock makes concurrent processes (the
  code server, run workers, the demo) wait for one parse instead of racing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from storepulse.errors import StorePulseError
from storepulse.settings import Settings, load_settings

_CHECKOUT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
_PACKAGED_PROJECT = Path(__file__).resolve().parent / "dbt_project"
# What dbt writes inside a project folder; never part of its fingerprint or a packaged copy.
GENERATED = ("target", "logs", "dbt_packages", ".user.yml")


def project_dir() -> Path:
    for candidate in (_CHECKOUT_PROJECT, _PACKAGED_PROJECT):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    raise StorePulseError(f"no dbt project found at {_CHECKOUT_PROJECT} or "
                          f"{_PACKAGED_PROJECT}: reinstall storepulse")


def dbt_executable() -> str:
    """``dbt`` beside this interpreter (a virtualenv's ``bin/``), else the one on PATH."""
    beside = Path(sys.executable).parent / ("dbt.exe" if os.name == "nt" else "dbt")
    if beside.is_file():
        return str(beside)
    found = shutil.which("dbt")
    if found is None:
        raise StorePulseError(f"dbt is not installed beside {sys.executable} nor on PATH: "
                              "pip install storepulse (it depends on dbt-postgres)")
    return found


@dataclass(frozen=True)
class DbtPaths:
    project_dir: Path
    target_dir: Path  # the prepared manifest and its partial-parse file
    runs_dir: Path  # one folder per dbt invocation: run_results.json, its log
    log_dir: Path  # dbt commands run by hand (`storepulse dbt`)

    @property
    def manifest_path(self) -> Path:
        return self.target_dir / "manifest.json"

    @property
    def fingerprint_path(self) -> Path:
        return self.target_dir / "storepulse-fingerprint"

    def environment(self) -> dict[str, str]:
        """dbt's own variables for these locations (so user arguments stay untouched)."""
        return {"DBT_PROJECT_DIR": str(self.project_dir),
                "DBT_PROFILES_DIR": str(self.project_dir),
                "DBT_TARGET_PATH": str(self.target_dir),
                "DBT_LOG_PATH": str(self.log_dir),
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def dbt_paths(settings: Settings | None = None) -> DbtPaths:
    home = (settings or load_settings()).home / "dbt"
    return DbtPaths(project_dir=project_dir(), target_dir=home / "target",
                    runs_dir=home / "runs", log_dir=home / "logs")


def run_target(paths: DbtPaths, run_id: str, keep: int = 30) -> Path:
    """A fresh folder for one dbt invocation's artifacts; only the newest ``keep`` stay."""
    paths.runs_dir.mkdir(parents=True, exist_ok=True)
    previous = sorted(paths.runs_dir.iterdir(), key=lambda p: p.stat().st_mtime)
    for old in previous[:max(0, len(previous) - keep + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return paths.runs_dir / f"{run_id[:8]}-{uuid.uuid4().hex[:6]}"


def partial_parse_cache(paths: DbtPaths, connection: dict[str, str]) -> Path:
    """Where the partial-parse state of runs against this warehouse is kept between runs.

    dbt reuses it only for the same profile (dbt-postgres compares the host: it re-parses
    everything for another server), so it is kept per server: every run then parses only what
    changed since the last one instead of the whole project."""
    server = {k: connection.get(k) for k in ("STOREPULSE_DB_HOST", "STOREPULSE_DB_PORT")}
    key = hashlib.sha256(json.dumps(server, sort_keys=True).encode()).hexdigest()[:16]
    return paths.target_dir / "partial-parse" / key


def keep_partial_parse(run_dir: Path, cache: Path) -> None:
    """Keep a finished invocation's partial-parse state for the next run (atomically)."""
    state = run_dir / "partial_parse.msgpack"
    if not state.is_file():
        return
    cache.mkdir(parents=True, exist_ok=True)
    staged = cache / f".partial_parse.{uuid.uuid4().hex}"
    shutil.copyfile(state, staged)
    os.replace(staged, cache / "partial_parse.msgpack")


def project_fingerprint(project: Path) -> str:
    """sha256 over every file of the project (paths and bytes) and dbt's version."""
    from dbt.version import __version__ as dbt_version

    digest = hashlib.sha256(f"dbt {dbt_version}\n".encode())
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if relative.parts[0] in GENERATED or not path.is_file():
            continue
        digest.update(f"{relative.as_posix()}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_manifest(paths: DbtPaths) -> bool:
    """Parse the project into ``paths.manifest_path`` unless this version is already parsed.
    Returns True when it parsed. Needs no database: the profile has defaults for every
    connection variable, and parsing opens no connection."""
    fingerprint = project_fingerprint(paths.project_dir)

    def current() -> bool:
        return (paths.manifest_path.is_file() and paths.fingerprint_path.is_file()
                and paths.fingerprint_path.read_text() == fingerprint)

    if current():
        return False
    paths.target_dir.mkdir(parents=True, exist_ok=True)
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(paths.target_dir / ".prepare.lock")):
        if current():  # another process parsed it while this one waited
            return False
        done = subprocess.run([dbt_executable(), "parse", "--quiet"],
                              env={**os.environ, **paths.environment()},
                              cwd=paths.project_dir, capture_output=True, text=True)
        if done.returncode != 0 or not paths.manifest_path.is_file():
            detail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
            raise StorePulseError(f"dbt parse of {paths.project_dir} failed: {detail[0]} "
                                  f"(full log in {paths.log_dir})")
        paths.fingerprint_path.write_text(fingerprint)
    return True


if __name__ == "__main__":  # image builds: `python -m storepulse.dbt_runtime`
    prepared = dbt_paths()
    ensure_manifest(prepared)
    print(f"dbt manifest ready: {prepared.manifest_path}")
