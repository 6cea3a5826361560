"""Regenerate the committed protobuf/gRPC Python code from proto/.

Run: python scripts/gen_proto.py [--out DIR]
The output mirrors the proto path (kubenas/api/v1beta1/...), so generated imports are
absolute and need no rewriting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTOS = ["kubenas/api/v1beta1/api.proto"]


def generate(out: Path) -> None:
    from grpc_tools import protoc  # dev dependency only
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    for proto in PROTOS:
        rc = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{PROTO_ROOT}",
                f"-I{include}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                str(PROTO_ROOT / proto),
            ]
        )
        if rc != 0:
            raise SystemExit(f"protoc failed on {proto} (exit {rc})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT, help="output root (default: repo root)")
    args = parser.parse_args()
    generate(args.out)


if __name__ == "__main__":
    sys.exit(main())
