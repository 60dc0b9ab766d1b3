#!/usr/bin/env python3
"""Writes an F32 copy of a (quantized) GGUF file: every tensor dequantized to
float32 with gguf.quants.dequantize (F32 tensors copied as they are), every
metadata key/value copied (tokenizer and chat template included) except
general.file_type, which becomes 0 (ALL_F32).

This is a GGUF-to-GGUF conversion: tensor names, shapes and llama.cpp's own
(permuted) q/k row order are kept, so llama.cpp and barl read the same weights
they read from the source file, only without the quantization step.

Usage: gguf_to_f32.py SRC.gguf DST.gguf   (needs the `gguf` and `numpy` packages)
The output is written to DST.tmp and renamed, so a partial file never remains.
"""

import os
import sys

import numpy as np
import gguf

FILE_TYPE_ALL_F32 = 0


def copy_metadata(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> None:
    for field in reader.fields.values():
        # GGUF.* are the reader's virtual fields (version, counts); the writer
        # adds general.architecture itself.
        if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE:
            value = FILE_TYPE_ALL_F32
        writer.add_key_value(field.name, value, vtype, sub_type=sub)
    if reader.get_field(gguf.Keys.General.FILE_TYPE) is None:
        writer.add_file_type(FILE_TYPE_ALL_F32)


def f32_tensor(t: gguf.ReaderTensor) -> np.ndarray:
    """The tensor as float32 in numpy order (GGUF dims reversed)."""
    shape = tuple(int(d) for d in reversed(t.shape))
    if t.tensor_type == gguf.GGMLQuantizationType.F32:
        data = np.asarray(t.data, dtype=np.float32)
    else:
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
    if data.size != int(t.n_elements):
        raise ValueError(f"tensor {t.name}: {data.size} values after dequantizing, expected {t.n_elements}")
    return data.reshape(shape)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    reader = gguf.GGUFReader(src)
    arch_field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    if arch_field is None:
        print(f"{src}: no {gguf.Keys.General.ARCHITECTURE} key", file=sys.stderr)
        return 1
    tmp = dst + ".tmp"
    writer = gguf.GGUFWriter(tmp, arch_field.contents())
    copy_metadata(reader, writer)
    # Dequantized tensors are held until the writer flushes them (about 4 bytes
    # per weight: ~0.55 GB for a 135M model).
    kinds: dict[str, int] = {}
    for t in reader.tensors:
        kinds[t.tensor_type.name] = kinds.get(t.tensor_type.name, 0) + 1
        writer.add_tensor(t.name, f32_tensor(t))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, dst)
    print(f"wrote {dst}: {len(reader.tensors)} tensors to F32 (source types {kinds})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
