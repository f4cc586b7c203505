"""Generate the Python code for protos/aigen/v1 into libs/aigen/v1, with typed stubs.

Run as `python -m aigen.devtools.protogen [OUT_DIR]`. The generated files are committed; a test
regenerates them into a temporary directory and fails if they differ (stale code).
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROTO_ROOT = ROOT / "protos"
PACKAGE = Path("aigen") / "v1"


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Write *_pb2.py, *_pb2_grpc.py and .pyi stubs under out_dir/aigen/v1; returns the files."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    include = str(resources.files("grpc_tools").joinpath("_proto"))
    bin_dir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
    ]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    package_dir = out_dir / PACKAGE
    init = package_dir / "__init__.py"
    init.write_text('"""Generated from protos/aigen/v1 by aigen.devtools.protogen. Do not edit."""\n')
    return sorted(p for p in package_dir.iterdir() if p.is_file())


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "libs"
    files = generate(out)
    print(f"generated {len(files)} files in {out / PACKAGE}")


if __name__ == "__main__":
    main()
