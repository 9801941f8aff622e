#!/usr/bin/env python3
"""Convert a llama2.c checkpoint (legacy "version 0" .bin) into a Hugging Face LLaMA folder.

  python scripts/convert_llama2c_to_hf.py ../shared/models/stories260K/stories260K.bin \
      --tokenizer ../shared/models/stories260K/tok512.bin --out /tmp/stories260K-hf

Writes <out>/config.json (LlamaForCausalLM) and <out>/model.safetensors (float32), with
numpy alone (the safetensors format is written directly: u64 header length, JSON header padded
with spaces to 8 bytes, then the tensors back to back in header order).

RoPE: llama2.c rotates interleaved pairs (x[2i], x[2i+1]) of each head, as Meta's original
code does; Hugging Face LLaMA rotates (x[i], x[i + head_dim/2]). The rotation of q.k is the
same when the rows of q_proj and k_proj are reordered the way transformers'
convert_llama_weights_to_hf.py does:
    w.reshape(n_heads, head_dim // 2, 2, dim).swapaxes(1, 2).reshape(n_heads * head_dim, dim)
(row h*hd + 2i + j moves to row h*hd + j*hd/2 + i), with n_kv_heads for k_proj. qbench's C++
reader keeps llama2.c's order and exposes this as gguf_unpermute_qk_rows.

The tokenizer file is only read to check that it has vocab_size entries (llama2.c's tok*.bin:
int32 max_token_length, then per token float32 score, int32 length, bytes); the HF folder gets
no tokenizer. BOS = 1, EOS = 2 as in llama2.c's sentencepiece vocabularies; rms_norm_eps 1e-5
and rope_theta 10000 as run.c hard-codes them.

Requires numpy only (tested with numpy 2.4.6, Python 3.11).
"""
import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np


def read_llama2c(path: Path):
    raw = path.read_bytes()
    if len(raw) < 28:
        sys.exit(f"{path}: {len(raw)} bytes, too small for the 28-byte llama2.c header")
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq = struct.unpack("<7i", raw[:28])
    if dim == 0x616B3432:
        sys.exit(f"{path}: a llama2.c version {hidden} export (magic ak42); this converter reads the legacy version 0 layout")
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // n_heads
    kv = hd * n_kv
    w = np.frombuffer(raw, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        if pos + n > w.size:
            sys.exit(f"{path}: file too short for the header (dim={dim} hidden={hidden} layers={n_layers} vocab={vocab})")
        a = w[pos:pos + n].reshape(shape)
        pos += n
        return a

    t = {"embed": take(vocab, dim), "rms_att": take(n_layers, dim), "wq": take(n_layers, dim, dim), "wk": take(n_layers, kv, dim),
         "wv": take(n_layers, kv, dim), "wo": take(n_layers, dim, dim), "rms_ffn": take(n_layers, dim),
         "w1": take(n_layers, hidden, dim), "w2": take(n_layers, dim, hidden), "w3": take(n_layers, hidden, dim),
         "rms_final": take(dim)}
    take(seq, hd // 2)  # freq_cis_real (legacy, unused)
    take(seq, hd // 2)  # freq_cis_imag
    if not shared:
        t["wcls"] = take(vocab, dim)
    if pos != w.size:
        sys.exit(f"{path}: {4 * (w.size - pos)} bytes after the last array")
    header = dict(dim=dim, hidden_dim=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv, vocab_size=vocab,
                  seq_len=seq, shared_classifier=shared)
    return header, t


def count_tokens(path: Path) -> int:
    raw = path.read_bytes()
    pos, n = 4, 0
    while pos < len(raw):
        if pos + 8 > len(raw):
            sys.exit(f"{path}: truncated inside token {n}")
        (length,) = struct.unpack_from("<i", raw, pos + 4)
        pos += 8 + length
        n += 1
    if pos != len(raw):
        sys.exit(f"{path}: truncated inside token {n - 1}")
    return n


def interleaved_to_half_split(w: np.ndarray, n_heads: int) -> np.ndarray:
    rows, cols = w.shape
    return w.reshape(n_heads, rows // n_heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def write_safetensors(path: Path, tensors: dict, metadata: dict):
    header = {"__metadata__": metadata}
    offset = 0
    for name, a in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in tensors.values():
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--tokenizer", type=Path, help="llama2.c tok*.bin: checked to have vocab_size tokens")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    h, t = read_llama2c(args.checkpoint)
    if args.tokenizer:
        n = count_tokens(args.tokenizer)
        if n != h["vocab_size"]:
            sys.exit(f"{args.tokenizer} has {n} tokens, the checkpoint's vocab_size is {h['vocab_size']}")

    out = {"model.embed_tokens.weight": t["embed"]}
    for i in range(h["n_layers"]):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = t["rms_att"][i]
        out[p + "self_attn.q_proj.weight"] = interleaved_to_half_split(t["wq"][i], h["n_heads"])
        out[p + "self_attn.k_proj.weight"] = interleaved_to_half_split(t["wk"][i], h["n_kv_heads"])
        out[p + "self_attn.v_proj.weight"] = t["wv"][i]
        out[p + "self_attn.o_proj.weight"] = t["wo"][i]
        out[p + "post_attention_layernorm.weight"] = t["rms_ffn"][i]
        out[p + "mlp.gate_proj.weight"] = t["w1"][i]
        out[p + "mlp.down_proj.weight"] = t["w2"][i]
        out[p + "mlp.up_proj.weight"] = t["w3"][i]
    out["model.norm.weight"] = t["rms_final"]
    if not h["shared_classifier"]:
        out["lm_head.weight"] = t["wcls"]

    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": h["dim"],
        "intermediate_size": h["hidden_dim"],
        "num_hidden_layers": h["n_layers"],
        "num_attention_heads": h["n_heads"],
        "num_key_value_heads": h["n_kv_heads"],
        "head_dim": h["dim"] // h["n_heads"],
        "vocab_size": h["vocab_size"],
        "max_position_embeddings": h["seq_len"],
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "hidden_act": "silu",
        "tie_word_embeddings": h["shared_classifier"],
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float32",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_safetensors(args.out / "model.safetensors", out, {"format": "pt", "source": str(args.checkpoint.name)})
    print(f"{args.out}: {len(out)} tensors, config {h}")


if __name__ == "__main__":
    main()
