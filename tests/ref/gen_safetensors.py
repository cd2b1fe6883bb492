#!/usr/bin/python3
"""Writes safetensors files with an implementation independent of braid's (numpy + the
format spec), plus a corpus of malformed files.  Output: tests/ref/safetensors/.

  good_*.safetensors   valid files; expected.json lists each tensor's dtype, shape and
                       values (as float64) for the C test to compare against
  bad_*.safetensors    malformed files; expected.json gives a substring the error must contain
"""
import json, os, struct
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(1234)

def bf16_bytes(a):
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16          # round to nearest even
    return u.astype(np.uint16).tobytes(), (u.astype(np.uint32) << 16).view(np.float32)

def write(path, tensors, metadata=None, pad=True):
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

expected = {"good": {}, "bad": {}}

# ---- valid files
a32 = rng.standard_normal((3, 5)).astype(np.float32)
a16 = rng.standard_normal((4, 2, 3)).astype(np.float16)
abf, abf_vals = bf16_bytes(rng.standard_normal(7))
ai32 = rng.integers(-1000, 1000, size=(2, 2)).astype(np.int32)
ai64 = np.arange(3, dtype=np.int64)
a64 = rng.standard_normal(2).astype(np.float64)
tensors = [
    ("model.embed_tokens.weight", "F32", a32.shape, a32.tobytes()),
    ("h16", "F16", a16.shape, a16.tobytes()),
    ("hbf", "BF16", (7,), abf),
    ("ids", "I32", ai32.shape, ai32.tobytes()),
    ("pos", "I64", ai64.shape, ai64.tobytes()),
    ("f64", "F64", a64.shape, a64.tobytes()),
    ("scalar", "F32", (), np.float32(2.5).tobytes()),
    ("empty", "F32", (0, 4), b""),
]
write(os.path.join(OUT, "good_mixed.safetensors"), tensors, {"format": "pt", "note": "written by numpy"})
expected["good"]["good_mixed.safetensors"] = {
    "metadata": {"format": "pt", "note": "written by numpy"},
    "tensors": {
        "model.embed_tokens.weight": {"dtype": "F32", "shape": list(a32.shape), "values": a32.astype(float).ravel().tolist()},
        "h16": {"dtype": "F16", "shape": list(a16.shape), "values": a16.astype(float).ravel().tolist()},
        "hbf": {"dtype": "BF16", "shape": [7], "values": abf_vals.astype(float).ravel().tolist()},
        "ids": {"dtype": "I32", "shape": list(ai32.shape), "values": ai32.astype(float).ravel().tolist()},
        "pos": {"dtype": "I64", "shape": [3], "values": ai64.astype(float).tolist()},
        "f64": {"dtype": "F64", "shape": [2], "values": a64.astype(np.float32).astype(float).tolist()},
        "scalar": {"dtype": "F32", "shape": [], "values": [2.5]},
        "empty": {"dtype": "F32", "shape": [0, 4], "values": []},
    },
}
# no metadata, no header padding (other writers do not always pad)
b = rng.standard_normal(6).astype(np.float32)
write(os.path.join(OUT, "good_nopad.safetensors"), [("w", "F32", (2, 3), b.tobytes())], None, pad=False)
expected["good"]["good_nopad.safetensors"] = {"metadata": {}, "tensors": {
    "w": {"dtype": "F32", "shape": [2, 3], "values": b.astype(float).tolist()}}}

# ---- malformed files: (name, bytes, substring of the error)
def hdr(obj, data=b"", hlen=None):
    h = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data

ok_entry = lambda off0, off1, shape=(2,), dt="F32": {"dtype": dt, "shape": list(shape), "data_offsets": [off0, off1]}
bad = [
    ("bad_short", b"\x01\x00\x00", "shorter than"),
    ("bad_hlen_huge", struct.pack("<Q", 1 << 63) + b"{}", "past the end"),
    ("bad_hlen_past_end", struct.pack("<Q", 100) + b"{}", "past the end"),
    ("bad_json", hdr(b'{"a": {"dtype": "F32",'), "JSON"),
    ("bad_not_object", hdr(b'[1, 2]'), "not an object"),
    ("bad_dtype", hdr({"a": ok_entry(0, 8, dt="F13")}, b"\0" * 8), "unknown dtype"),
    ("bad_offsets_oob", hdr({"a": ok_entry(0, 8)}, b"\0" * 4), "past the data area"),
    ("bad_size_mismatch", hdr({"a": ok_entry(0, 6, shape=(2,))}, b"\0" * 8), "span"),
    ("bad_overlap", hdr({"a": ok_entry(0, 8), "b": ok_entry(4, 12)}, b"\0" * 12), "overlaps"),
    ("bad_begin_gt_end", hdr({"a": ok_entry(8, 0, shape=(0,))}, b"\0" * 8), "begin"),
    ("bad_negative_dim", hdr({"a": ok_entry(0, 8, shape=(-2,))}, b"\0" * 8), "non-negative"),
    ("bad_shape_type", hdr({"a": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, b"\0" * 8), "shape"),
    ("bad_missing_offsets", hdr({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8), "data_offsets"),
    ("bad_metadata_value", hdr({"__metadata__": {"k": 1}}), "__metadata__"),
    ("bad_duplicate", hdr(b'{"a": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "a": {"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8), "duplicate"),
    ("bad_entry_type", hdr({"a": 5}), "not an object"),
    ("bad_shape_overflow", hdr({"a": ok_entry(0, 8, shape=(1 << 62, 1 << 62))}, b"\0" * 8), "overflow"),
    ("bad_too_many_dims", hdr({"a": ok_entry(0, 4, shape=(1,) * 9)}, b"\0" * 4), "dimensions"),
    ("bad_empty_file", b"", "shorter than"),
]
for name, data, msg in bad:
    with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
        f.write(data)
    expected["bad"][name + ".safetensors"] = msg
# truncated copy of a good file
with open(os.path.join(OUT, "good_mixed.safetensors"), "rb") as f:
    whole = f.read()
with open(os.path.join(OUT, "bad_truncated.safetensors"), "wb") as f:
    f.write(whole[: len(whole) - 10])
expected["bad"]["bad_truncated.safetensors"] = "past the data area"
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
print("wrote", len(expected["good"]), "good and", len(expected["bad"]), "malformed files to", OUT)
