"""The coding agents themselves, installed from npm into var/agents (gitignored) once per
checkout: Claude Code and the Codex CLI, at the versions their request shapes were read
from (docs/agents.md). Without npm the tests skip; under CI=true they fail instead."""

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
AGENTS_DIR = ROOT / "var" / "agents"
PACKAGES = ("@anthropic-ai/claude-code@2.1.197", "@openai/codex@0.171.0")
BINARIES = {"claude": AGENTS_DIR / "node_modules" / ".bin" / "claude",
            "codex": AGENTS_DIR / "node_modules" / ".bin" / "codex"}


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the agent CLIs cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def _installed() -> bool:
    if not all(path.exists() for path in BINARIES.values()):
        return False
    wanted = {spec.rsplit("@", 1)[0]: spec.rsplit("@", 1)[1] for spec in PACKAGES}
    for name, version in wanted.items():
        manifest = AGENTS_DIR / "node_modules" / name / "package.json"
        if f'"version": "{version}"' not in manifest.read_text():
            return False
    return True


@pytest.fixture(scope="session")
def agent_binaries() -> dict[str, Path]:
    """{"claude": path, "codex": path}, installing the pinned packages when missing."""
    if shutil.which("node") is None:  # Codex's launcher is a Node script
        _unavailable("Node.js is not installed (Node 20+ and npm are needed for the agent CLIs)")
    AGENTS_DIR.mkdir(parents=True, exist_ok=True)
    # Parallel test workers share the folder: one installs, the others wait for it.
    with open(AGENTS_DIR.parent / "agents.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            npm = shutil.which("npm")
            if npm is None:
                _unavailable("npm is not installed (needed once, to install the agent CLIs into var/agents)")
            done = subprocess.run([npm, "install", "--prefix", str(AGENTS_DIR), "--no-audit", "--no-fund",
                                   "--no-save", *PACKAGES], capture_output=True, text=True, timeout=600)
            if done.returncode != 0 or not _installed():
                _unavailable(f"npm install {' '.join(PACKAGES)} failed: {done.stderr[-1500:]}")
    return dict(BINARIES)
