"""Build the two distributions of this source and check them.

    python scripts/build_dists.py [--out dist] [--no-check]

- ``colbert-plugins``: sdist and wheel, depending on ``onnxruntime`` (CPU);
- ``colbert-plugins-gpu``: sdist and wheel of the same source with ``onnxruntime-gpu`` in place
  of ``onnxruntime`` (as fastembed / fastembed-gpu do): an extra cannot replace a dependency,
  and with both ONNX Runtime builds installed the CPU one wins.

Then it checks what it built: ``twine check`` on every file, each wheel's name, version and
ONNX Runtime requirement, the same module files in both wheels, and an sdist that holds the
test suite's helpers and fixtures. Exits 1 with the differences when a check fails. Needs
``build`` and ``twine`` (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
NAME, GPU_NAME = "colbert-plugins", "colbert-plugins-gpu"
#: What the sdist must carry for `pytest` to run from it.
SDIST_MUST_HOLD = (
    "tests/conftest.py",
    "tests/tiny_model.py",
    "tests/serving.py",
    "tests/fixtures/pylate",
    "examples/rerank.py",
    "benchmarks/parity_pylate.py",
    "scripts/test.sh",
    "CHANGELOG.md",
)


def gpu_pyproject(text: str) -> str:
    """``pyproject.toml`` of the GPU distribution: another name, onnxruntime-gpu."""
    out, count = re.subn(r'^name = "colbert-plugins"$', f'name = "{GPU_NAME}"', text, flags=re.M)
    if count != 1:
        raise SystemExit("pyproject.toml: no 'name = \"colbert-plugins\"' line")
    out, count = re.subn(r'"onnxruntime>=', '"onnxruntime-gpu>=', out)
    if count != 1:
        raise SystemExit("pyproject.toml: expected one onnxruntime requirement")
    # Extras that name the package itself (all = ["colbert-plugins[...]"]).
    return out.replace('"colbert-plugins[', f'"{GPU_NAME}[')


def build(source: Path, out: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(
            f"building {source.name} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )


def copy_source(dest: Path) -> None:
    """The files git tracks (plus untracked, unignored ones), as an sdist would see them."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def wheel_metadata(wheel: Path) -> tuple[dict[str, list[str]], set[str]]:
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(zf.read(meta_name).decode())
        modules = {n for n in zf.namelist() if n.startswith("colbert_plugins/")}
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    return fields, modules


def check(out: Path, version: str) -> list[str]:
    problems: list[str] = []
    files = sorted(out.iterdir())
    twine = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
    )
    if twine.returncode:
        problems.append(f"twine check failed:\n{twine.stdout}{twine.stderr}")
    found: dict[str, set[str]] = {}
    for name, runtime in ((NAME, "onnxruntime"), (GPU_NAME, "onnxruntime-gpu")):
        stem = name.replace("-", "_")
        wheels = [
            f for f in files if f.name.startswith(f"{stem}-{version}-") and f.suffix == ".whl"
        ]
        if len(wheels) != 1:
            problems.append(
                f"expected one {name} {version} wheel, found {[w.name for w in wheels]}"
            )
            continue
        meta, modules = wheel_metadata(wheels[0])
        found[name] = modules
        # Unconditional requirements only (extras carry a marker).
        base = {
            req.name
            for req in map(Requirement, meta.get("Requires-Dist", []))
            if req.marker is None and req.name.startswith("onnxruntime")
        }
        if base != {runtime}:
            problems.append(f"{name}: ONNX Runtime requirements {sorted(base)}, want {runtime}")
        if meta.get("Name") != [name] or meta.get("Version") != [version]:
            problems.append(f"{name}: metadata says {meta.get('Name')} {meta.get('Version')}")
    if len(found) == 2 and found[NAME] != found[GPU_NAME]:
        problems.append(f"the wheels' modules differ: {sorted(found[NAME] ^ found[GPU_NAME])}")
    sdist = out / f"{NAME.replace('-', '_')}-{version}.tar.gz"
    if not sdist.is_file():
        problems.append(f"no sdist {sdist.name}")
    else:
        with tarfile.open(sdist) as tf:
            names = tf.getnames()
        prefix = f"{NAME.replace('-', '_')}-{version}/"
        for rel in SDIST_MUST_HOLD:
            if not any(n == prefix + rel or n.startswith(prefix + rel + "/") for n in names):
                problems.append(f"the sdist lacks {rel}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from colbert_plugins import __version__

    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        cpu_src, gpu_src = Path(tmp) / "cpu", Path(tmp) / "gpu"
        for dest in (cpu_src, gpu_src):
            dest.mkdir()
            copy_source(dest)
        pyproject = gpu_src / "pyproject.toml"
        pyproject.write_text(gpu_pyproject(pyproject.read_text(encoding="utf-8")), encoding="utf-8")
        build(cpu_src, out)
        build(gpu_src, out)
    for path in sorted(out.iterdir()):
        print(f"built {path.name}  ({path.stat().st_size / 1e6:.2f} MB)")
    if args.no_check:
        return 0
    problems = check(out, __version__)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if not problems:
        print(f"checked: twine, names, version {__version__}, requirements, modules, sdist")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
