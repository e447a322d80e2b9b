"""Print a pip requirement line for one package of uv.lock, pinned to the locked version and
limited to the hashes of its locked wheels: `pip install --require-hashes --only-binary=:all:`
then installs exactly what the lock recorded. Standard library only (it runs before uv is
installed, in the images' build stage):

    python3 images/locked_requirement.py uv.lock uv
"""

from __future__ import annotations

import sys
import tomllib


def requirement(lock: dict, name: str) -> str:
    """``name==version --hash=sha256:...`` for each wheel the lock holds for ``name``."""
    found = [p for p in lock.get("package", []) if p.get("name") == name]
    if len(found) != 1:
        raise SystemExit(f"uv.lock holds {len(found)} packages named {name!r}, not one")
    package = found[0]
    hashes = [wheel["hash"] for wheel in package.get("wheels", [])]
    if not hashes:
        raise SystemExit(f"uv.lock has no wheel for {name} {package['version']}")
    return " ".join([f"{name}=={package['version']}", *(f"--hash={h}" for h in hashes)])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise SystemExit("usage: locked_requirement.py <uv.lock> <package>")
    with open(argv[0], "rb") as lock:
        print(requirement(tomllib.load(lock), argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
