"""The Dockerfile cannot be built here (no Docker engine); keep it in step with the project."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_copies_every_installed_package_and_runs_the_entrypoint() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = project["tool"]["setuptools"]["packages"]["find"]
    for package in (p.rstrip("*") for p in found["include"]):
        # the folder the package sits in: the project root, or another root of `where` (clients/python)
        root = next(r for r in found.get("where", ["."]) if (ROOT / r / package).is_dir())
        source = package if root == "." else root
        assert re.search(rf"^COPY {source} \./{source}$", dockerfile, re.M), f"Dockerfile does not copy {source}/"
        assert f"!{source}/" in ignore, f".dockerignore leaves out {source}/"
    assert 'ENTRYPOINT ["ovms-grpc"]' in dockerfile
    assert "ovms-grpc" in project["project"]["scripts"]
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M), "the image must not run as root"
    assert "EXPOSE 9000 8000" in dockerfile
