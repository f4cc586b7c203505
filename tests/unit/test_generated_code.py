"""The committed protobuf code must be what protos/ generates today."""

from __future__ import annotations

import filecmp

from aigen.devtools import protogen

GENERATED = protogen.ROOT / "libs" / "aigen" / "v1"


def test_generated_code_is_not_stale(tmp_path):
    fresh = protogen.generate(tmp_path)
    names = sorted(p.name for p in fresh)
    committed = sorted(p.name for p in GENERATED.iterdir() if p.is_file())
    assert names == committed, "run `make proto`: generated files differ from protos/"
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "aigen" / "v1", GENERATED, names, shallow=False)
    assert not mismatch and not errors, f"run `make proto`: stale generated code in {mismatch + errors}"


def test_every_proto_is_generated():
    protos = {p.stem for p in protogen.proto_files()}
    assert protos <= {p.name.removesuffix("_pb2.py") for p in GENERATED.glob("*_pb2.py")}
