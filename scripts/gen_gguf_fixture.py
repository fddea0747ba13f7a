#!/usr/bin/env python3
"""Writes the small GGUF fixtures in tests/data/gguf/ with the reference Python `gguf` package.

    .venv/bin/python scripts/gen_gguf_fixture.py            # (re)writes the fixtures
    .venv/bin/python scripts/gen_gguf_fixture.py --verify F  # checks F (e.g. sift's writer output)
                                                             # with GGUFReader against the same
                                                             # expected content as python_writer.gguf

The C++ tests (tests/gguf/python_fixture_test.cpp) check the same values, so keep them in sync.
Values are deterministic; tensors are tiny. Run with the project venv (scripts/setup.sh).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "data" / "gguf"

UNICODE = "h\u00e9llo w\u00f6rld \U0001f999 \u6f22\u5b57"

# (key, value, type, sub_type): every value type, nested arrays, unicode, an empty string.
KVS = [
    ("test.u8", 200, VT.UINT8, None),
    ("test.i8", -100, VT.INT8, None),
    ("test.u16", 60000, VT.UINT16, None),
    ("test.i16", -30000, VT.INT16, None),
    ("test.u32", 4000000000, VT.UINT32, None),
    ("test.i32", -2000000000, VT.INT32, None),
    ("test.f32", 0.25, VT.FLOAT32, None),
    ("test.bool_true", True, VT.BOOL, None),
    ("test.bool_false", False, VT.BOOL, None),
    ("test.string", "hello", VT.STRING, None),
    ("test.string_empty", "", VT.STRING, None),
    ("test.string_unicode", UNICODE, VT.STRING, None),
    ("test.u64", 18000000000000000000, VT.UINT64, None),
    ("test.i64", -9000000000000000000, VT.INT64, None),
    ("test.f64", -1.5e300, VT.FLOAT64, None),
    ("test.array_u8", [1, 2, 255], VT.ARRAY, VT.UINT8),
    ("test.array_i32", [-1, 0, 7], VT.ARRAY, VT.INT32),
    ("test.array_f32", [0.5, -2.0], VT.ARRAY, VT.FLOAT32),
    ("test.array_u64", [1, 2**63], VT.ARRAY, VT.UINT64),
    ("test.array_bool", [True, False, True], VT.ARRAY, VT.BOOL),
    ("test.array_string", ["a", "", UNICODE], VT.ARRAY, VT.STRING),
    ("test.array_nested", [[1, 2], [3]], VT.ARRAY, VT.ARRAY),  # inner arrays infer int32
    ("test.array_nested_string", [["x", "y"], ["z"]], VT.ARRAY, VT.ARRAY),
]


def q8_0_blocks(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Values in [-127, 127] with 127 in every block, so each block's scale is exactly 1.0."""
    x = (np.arange(rows * cols, dtype=np.int64) * 37 % 255 - 127).astype(np.float32)
    x = x.reshape(rows, cols)
    x[:, ::32] = 127.0
    q = gguf.quants.quantize(x, QT.Q8_0)
    return x, q


def tensors() -> list[tuple[str, np.ndarray, QT | None]]:
    f32 = (np.arange(6, dtype=np.float32) * 0.5 - 1.0).reshape(2, 3)  # ne = [3, 2]
    f16 = np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16)
    _, q8 = q8_0_blocks(2, 64)
    i32 = np.array([-7, 0, 2147483647], dtype=np.int32)
    i8 = np.array([-128, -1, 0, 1, 127], dtype=np.int8)
    f64 = np.array([3.0, -0.125], dtype=np.float64)
    cube = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    return [
        ("t.f32", f32, None),
        ("t.f16", f16, None),
        ("t.q8_0", q8, QT.Q8_0),
        ("t.i32", i32, None),
        ("t.i8", i8, None),
        ("t.f64", f64, None),
        ("t.cube", cube, None),
    ]


def write_main(path: Path) -> None:
    w = gguf.GGUFWriter(str(path), arch="test")
    for key, val, vtype, sub in KVS:
        w.add_key_value(key, val, vtype, sub_type=sub)
    for name, data, raw in tensors():
        w.add_tensor(name, data, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_align64(path: Path) -> None:
    w = gguf.GGUFWriter(str(path), arch="test")
    w.add_custom_alignment(64)
    w.add_key_value("test.note", "alignment 64", VT.STRING)
    w.add_tensor("a", np.arange(3, dtype=np.float32))  # 12 bytes, padded to 64
    w.add_tensor("b", np.arange(5, dtype=np.int16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def verify(path: Path) -> int:
    r = gguf.GGUFReader(str(path))
    errors = []
    arch = r.get_field("general.architecture")
    if arch is None or arch.contents() != "test":
        errors.append("general.architecture != 'test'")
    for key, val, vtype, sub in KVS:
        field = r.get_field(key)
        if field is None:
            errors.append(f"{key}: missing")
            continue
        if field.types[0] != vtype:
            errors.append(f"{key}: type {field.types[0]!r}, expected {vtype!r}")
            continue
        got = field.contents()
        if sub == VT.ARRAY:
            # GGUFReader flattens nested arrays (its FIXME); compare flattened, check the types.
            val = [item for inner in val for item in inner]
            if field.types[1] != VT.ARRAY:
                errors.append(f"{key}: element type {field.types[1]!r}, expected ARRAY")
        if vtype == VT.FLOAT32 or sub == VT.FLOAT32:
            ok = np.allclose(np.array(got, dtype=np.float64), np.array(val, dtype=np.float64))
        else:
            ok = got == val
        if not ok:
            errors.append(f"{key}: {got!r} != {val!r}")
    by_name = {t.name: t for t in r.tensors}
    for name, data, raw in tensors():
        t = by_name.get(name)
        if t is None:
            errors.append(f"tensor {name}: missing")
            continue
        want_type = raw if raw is not None else {
            np.dtype(np.float32): QT.F32, np.dtype(np.float16): QT.F16,
            np.dtype(np.int32): QT.I32, np.dtype(np.int8): QT.I8, np.dtype(np.float64): QT.F64,
        }[data.dtype]
        if t.tensor_type != want_type:
            errors.append(f"tensor {name}: type {t.tensor_type!r}, expected {want_type!r}")
        if bytes(np.asarray(t.data).tobytes()) != data.tobytes():
            errors.append(f"tensor {name}: data differs")
    if len(r.tensors) != len(tensors()):
        errors.append(f"{len(r.tensors)} tensors, expected {len(tensors())}")
    for e in errors:
        print(f"{path}: {e}", file=sys.stderr)
    if not errors:
        print(f"{path}: GGUFReader reads {len(r.fields)} fields and {len(r.tensors)} tensors, "
              "all as expected")
    return 1 if errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify", type=Path, help="check FILE with GGUFReader instead of writing")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    if args.verify:
        return verify(args.verify)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    main_path = args.out_dir / "python_writer.gguf"
    write_main(main_path)
    write_align64(args.out_dir / "python_align64.gguf")
    rc = verify(main_path)
    for p in sorted(args.out_dir.glob("python_*.gguf")):
        print(f"wrote {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p} "
              f"({p.stat().st_size} bytes)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
