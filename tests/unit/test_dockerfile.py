"""The Dockerfile cannot be built here (no Docker engine); keep it in step with the project."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_copies_every_installed_package_and_runs_the_entrypoint() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in packages:
        assert re.search(rf"^COPY {package} \./{package}$", dockerfile, re.M), f"Dockerfile does not copy {package}/"
        assert f"!{package}/" in ignore, f".dockerignore leaves out {package}/"
    assert 'ENTRYPOINT ["ovms-grpc"]' in dockerfile
    assert "ovms-grpc" in project["project"]["scripts"]
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M), "the image must not run as root"
    assert "EXPOSE 9000 8000" in dockerfile
