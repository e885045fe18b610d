"""`pip install guardstack` from a built wheel: the wheel carries every file
of the package (shipped weights, default policy, migrations, example sets,
dashboard templates), one version everywhere, and the package runs from the
unpacked wheel alone (its dependencies from the test environment)."""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import guardstack

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "guardstack"
#: What the package cannot work without, named so a failure says what is missing.
ESSENTIAL = [
    "guardstack/policies/default.yaml",
    "guardstack/classifiers/weights/model.onnx",
    "guardstack/classifiers/weights/tokenizer.json",
    "guardstack/classifiers/weights/calibration.json",
    "guardstack/classifiers/weights/config.json",
    "guardstack/store/migrations/env.py",
    "guardstack/store/migrations/script.py.mako",
    "guardstack/store/migrations/versions/0001_initial.py",
    "guardstack/evaluation/examples.jsonl",
    "guardstack/gateway/app.py",
    "guardstack/py.typed",
]


def _source_files() -> set[str]:
    return {f"guardstack/{p.relative_to(PACKAGE).as_posix()}" for p in PACKAGE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy, so the build's scratch folders never land in the
    # working tree; without build isolation it needs no index.
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-q", "-w", str(work / "dist"), str(source)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = (work / "dist").glob("guardstack-*.whl")
    return built


def test_wheel_carries_every_package_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing_essential = [n for n in ESSENTIAL if n not in names]
    assert not missing_essential, missing_essential
    # Every file of the source package, data included (dashboard templates and
    # static files, model suites, migrations) whoever adds it next.
    missing = sorted(_source_files() - names)
    assert not missing, missing
    templates = PACKAGE / "dashboard" / "templates"
    if templates.is_dir():
        assert any(n.startswith("guardstack/dashboard/templates/") for n in names)


def test_wheel_version_is_the_package_version(wheel):
    assert wheel.name.startswith(f"guardstack-{guardstack.__version__}-")
    with zipfile.ZipFile(wheel) as z:
        (meta_name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(z.read(meta_name))
    assert meta["Version"] == guardstack.__version__
    extras = set(meta.get_all("Provides-Extra") or [])
    assert {"gateway", "offline", "ray", "train", "demo"} <= extras
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{guardstack.__version__}]" in changelog


def test_unpacked_wheel_runs_on_its_own(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("GUARDSTACK_DB", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # cwd outside the repository: nothing but the unpacked wheel provides
        # guardstack (PYTHONPATH comes before the editable install).
        return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    where = run("-c", "import guardstack; print(guardstack.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout
    checked = run("-m", "guardstack", "check", "What do mitochondria do?", "--json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["decision"] == "allow"
    # Migrations (alembic env + versions) and the default policy come from the wheel.
    db = f"sqlite:///{tmp_path / 'store.db'}"
    migrated = run("-m", "guardstack", "db", "upgrade", "--db", db)
    assert migrated.returncode == 0, migrated.stderr
    status = run("-m", "guardstack", "db", "status", "--db", db)
    latest = max(p.name.split("_")[0] for p in
                 (PACKAGE / "store" / "migrations" / "versions").glob("[0-9]*.py"))
    assert status.returncode == 0 and f"revision {latest}" in status.stdout, \
        status.stdout + status.stderr
    version = run("-m", "guardstack", "--version")
    assert version.stdout.strip() == f"guardstack {guardstack.__version__}"
