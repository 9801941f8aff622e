#!/usr/bin/env python3
"""Reference numbers for qbench's evaluations (tests/eval/test_eval.cpp), computed independently
of the C++ code: Hugging Face transformers' LlamaForCausalLM for the model, a Python llama2.c
tokenizer written here from run.c's description, and the protocols implemented from their
descriptions (docs/evaluation-protocols.md) and lm-evaluation-harness v0.4's code paths.

    /tmp/refvenv/bin/python scripts/make_eval_fixtures.py [--data-dir ../shared]

Needs transformers, torch, safetensors, numpy. Converts stories260K to a Hugging Face folder with
scripts/convert_llama2c_to_hf.py (into a temporary folder) and writes
tests/fixtures/eval/stories260k_eval.json:

  gptq      WikiText-2 test, HF rows joined with "\\n\\n", tokenized once with BOS, windows of
            256 tokens (stories260K's context is 512), remainder dropped; per window the mean NLL
            of its 255 shifted positions (fp32 model, fp64 sums); the token count and sha256 of
            the whole stream; the first windows' ids; the mean over all windows.
  llamacpp  the raw file tokenized with BOS, chunks of 128 with BOS forced at each chunk start,
            the second half of each chunk scored (positions ctx/2 .. ctx-2 predict the next
            token, as llama.cpp's perplexity tool); 2 chunks; ppl and its +- (llama.cpp formula).
  zeroshot  the first items of PIQA, ARC-Easy, ARC-Challenge, BoolQ, HellaSwag, WinoGrande with
            lm-eval v0.4's prompts, its _encode_pair token split and its loglikelihood (sum of
            continuation log-probs, is_greedy), max_length 512 with left truncation.

Token streams are hashed as sha256 over little-endian int32 ids.
"""
import argparse
import hashlib
import heapq
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "eval"


# ---------------------------------------------------------------------------------------------
# llama2.c tokenizer (tokenizer.bin; the behaviour of run.c's encode(), implemented with a heap)
# ---------------------------------------------------------------------------------------------
class Llama2cTokenizer:
    """tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, bytes.

    encode(text, bos): optional BOS (id 1); a dummy-prefix " " token when the text is not empty;
    every UTF-8 character (lead byte plus up to three continuation bytes) becomes its vocabulary
    entry, or its bytes as byte tokens (byte + 3); then repeatedly the adjacent pair whose
    concatenated text is a vocabulary entry with the highest score (> -1e10; the leftmost such
    pair on ties) is merged, until no pair merges. A heap keyed by (-score, position of the left
    symbol) with stale-entry checks pops exactly the pair run.c's linear scan would pick."""

    def __init__(self, path):
        raw = Path(path).read_bytes()
        pos = 4
        self.pieces, self.scores = [], []
        while pos < len(raw):
            score, length = struct.unpack_from("<fi", raw, pos)
            self.pieces.append(raw[pos + 8:pos + 8 + length])
            self.scores.append(score)
            pos += 8 + length
        self.index = {p: i for i, p in enumerate(self.pieces)}  # run.c's sorted lookup: first on duplicates irrelevant here
        self.bos, self.eos = 1, 2

    def encode(self, text: str, bos: bool):
        data = text.encode("utf-8")
        ids = []
        if data:
            ids.append(self.index[b" "])
        i = 0
        while i < len(data):
            j = i + 1
            while j < len(data) and (data[j] & 0xC0) == 0x80 and j - i < 4:
                j += 1
            ch = data[i:j]
            if ch in self.index:
                ids.append(self.index[ch])
            else:
                ids.extend(b + 3 for b in ch)
            i = j
        ids = self._merge(ids)
        return ([self.bos] if bos else []) + ids

    def _merge(self, ids):
        n = len(ids)
        if n < 2:
            return ids
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        alive = [True] * n
        cur = list(ids)
        heap = []

        def push(left):
            right = nxt[left]
            if right >= n:
                return
            merged = self.index.get(self.pieces[cur[left]] + self.pieces[cur[right]])
            if merged is not None and self.scores[merged] > -1e10:
                heapq.heappush(heap, (-self.scores[merged], left, cur[left], right, cur[right], merged))

        for k in range(n - 1):
            push(k)
        while heap:
            _, left, lid, right, rid, merged = heapq.heappop(heap)
            if not (alive[left] and alive[right] and nxt[left] == right and cur[left] == lid and cur[right] == rid):
                continue
            cur[left] = merged
            alive[right] = False
            nxt[left] = nxt[right]
            if nxt[right] < n:
                prv[nxt[right]] = left
            if prv[left] >= 0:
                push(prv[left])
            push(left)
        return [cur[k] for k in range(n) if alive[k]]


def ids_sha256(ids):
    return hashlib.sha256(np.asarray(ids, dtype="<i4").tobytes()).hexdigest()


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Model: log-probs in fp32, sums in fp64
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def window_nlls(model, windows, first_scored, batch=32):
    """Per window: NLL (fp64) of tokens[first_scored:] each predicted from the previous position."""
    out = []
    for b in range(0, len(windows), batch):
        x = torch.tensor(windows[b:b + batch], dtype=torch.long)
        logp = torch.log_softmax(model(x).logits.float(), dim=-1)  # [B, T, V]
        tgt = x[:, first_scored:]
        lp = logp[:, first_scored - 1:-1].gather(-1, tgt.unsqueeze(-1)).squeeze(-1).double()  # [B, n]
        out.extend((-lp).numpy())
    return out


# ---------------------------------------------------------------------------------------------
# Perplexity protocols
# ---------------------------------------------------------------------------------------------
def hf_rows(raw: str):
    """The rows of HF wikitext-2-raw-v1 from the raw file (datasets/README.md): split on "\\n"
    keeping line ends; a line that is just " " becomes "", any other line gets its "\\n"."""
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file ends with "\n": no row after it
    return ["" if line == " " else line + "\n" for line in lines]


def gptq_fixture(model, tok, raw, seq_len, n_windows_kept):
    text = "\n\n".join(hf_rows(raw))
    ids = tok.encode(text, bos=True)
    n = len(ids) // seq_len
    windows = [ids[i * seq_len:(i + 1) * seq_len] for i in range(n)]
    nll = window_nlls(model, windows, 1)
    means = [float(v.mean()) for v in nll]
    return {
        "seq_len": seq_len,
        "text_bytes": len(text.encode("utf-8")),
        "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "n_tokens": len(ids),
        "tokens_sha256": ids_sha256(ids),
        "n_windows": n,
        "windows": [{"index": i, "tokens": windows[i], "tokens_sha256": ids_sha256(windows[i]), "nll_mean": means[i]}
                    for i in range(n_windows_kept)],
        "last_window": {"index": n - 1, "tokens_sha256": ids_sha256(windows[-1]), "first": windows[-1][:8],
                        "nll_mean": means[-1]},
        # ppl = exp(sum(nll * seqlen) / (n * seqlen)) = exp(mean of the window means)
        "nll_mean_all": float(np.mean(means)),
        "ppl_all": math.exp(float(np.mean(means))),
        "nll_mean_first_3": float(np.mean(means[:3])),
    }


def llamacpp_fixture(model, tok, raw, ctx, n_chunks):
    ids = tok.encode(raw, bos=True)
    chunks = []
    for c in range(n_chunks):
        w = list(ids[c * ctx:(c + 1) * ctx])
        w[0] = tok.bos  # llama.cpp: tokens[batch_start] = BOS for the first batch of each chunk
        chunks.append(w)
    # logits at positions ctx/2 .. ctx-2 predict tokens ctx/2+1 .. ctx-1 (ctx/2 - 1 tokens)
    nll = window_nlls(model, chunks, ctx // 2 + 1)
    flat = np.concatenate(nll)
    count = flat.size
    mean = flat.mean()
    mean2 = (flat * flat).mean()
    ppl = math.exp(mean)
    # llama.cpp: nll2/count - nll^2, then sqrt(that / (count - 1)) * ppl
    unc = ppl * math.sqrt((mean2 - mean * mean) / (count - 1))
    return {
        "ctx": ctx,
        "n_tokens": len(ids),
        "tokens_sha256": ids_sha256(ids),
        "chunks": [{"tokens_sha256": ids_sha256(w), "first": w[:8], "n_scored": int(v.size), "nll_sum": float(v.sum())}
                   for w, v in zip(chunks, nll)],
        "ppl": ppl,
        "uncertainty": unc,
        "nll_mean": float(mean),
    }


# ---------------------------------------------------------------------------------------------
# Zero-shot: lm-eval v0.4 task prompts and loglikelihood
# ---------------------------------------------------------------------------------------------
def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def task_docs(data, name, n):
    """(context(s), choices, continuation(s), gold) per item, as lm-eval v0.4's task YAMLs build
    them: piqa, arc_easy, arc_challenge, boolq, hellaswag (preprocessed already in the file),
    winogrande (partial scoring: the option fills the blank in the context)."""
    d = Path(data) / "datasets"
    items = []
    if name == "piqa":
        docs = read_jsonl(d / "piqa/valid.jsonl")
        labels = (d / "piqa/valid-labels.lst").read_text().split()
        for doc, lab in list(zip(docs, labels))[:n]:
            ch = [doc["sol1"], doc["sol2"]]
            items.append((["Question: " + doc["goal"] + "\nAnswer:"] * 2, ch, [" " + c for c in ch], int(lab)))
    elif name in ("arc_easy", "arc_challenge"):
        f = "ARC-Easy-test.jsonl" if name == "arc_easy" else "ARC-Challenge-test.jsonl"
        for doc in read_jsonl(d / "arc" / f)[:n]:
            ch = doc["choices"]["text"]
            items.append((["Question: " + doc["question"] + "\nAnswer:"] * len(ch), ch, [" " + c for c in ch],
                          doc["choices"]["label"].index(doc["answerKey"])))
    elif name == "boolq":
        for doc in read_jsonl(d / "boolq/boolq-validation.jsonl")[:n]:
            ctx = doc["passage"] + "\nQuestion: " + doc["question"] + "?\nAnswer:"
            items.append(([ctx] * 2, ["no", "yes"], [" no", " yes"], int(doc["label"])))
    elif name == "hellaswag":
        lines = (d / "hellaswag/hellaswag_val_full.txt").read_text(encoding="utf-8").split("\n")
        for k in range(n):
            ctx, gold, endings = lines[6 * k], int(lines[6 * k + 1]), lines[6 * k + 2:6 * k + 6]
            items.append(([ctx] * 4, endings, [" " + e for e in endings], gold))
    elif name == "winogrande":
        for doc in read_jsonl(d / "winogrande/winogrande_xl-validation.jsonl")[:n]:
            s = doc["sentence"]
            idx = s.index("_")
            opts = [doc["option1"], doc["option2"]]
            target = s[idx + 1:].strip()
            items.append(([s[:idx] + o for o in opts], opts, [" " + target] * 2, {"1": 0, "2": 1}[doc["answer"]]))
    else:
        raise ValueError(name)
    return items


def encode_pair(tok, context, continuation):
    """lm-eval v0.4 _encode_pair: trailing whitespace of the context moves to the continuation;
    the continuation's tokens are those of context+continuation after len(encode(context))."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok.encode(context + continuation, bos=False)  # HFLM: add_special_tokens=False
    ctx = tok.encode(context, bos=False)
    return ctx, whole[len(ctx):]


@torch.no_grad()
def loglikelihood(model, ctx, cont, max_length):
    """lm-eval v0.4 _loglikelihood_tokens for one request: input (ctx+cont)[-(max_length+1):][:-1],
    the last len(cont) positions' log-softmax; sum of the continuation's log-probs, and whether
    the argmax equals the continuation at every position."""
    inp = (ctx + cont)[-(max_length + 1):][:-1]
    logp = torch.log_softmax(model(torch.tensor([inp])).logits[0].float(), dim=-1)
    lp = logp[len(inp) - len(cont):]
    tgt = torch.tensor(cont)
    ll = float(lp.gather(-1, tgt.unsqueeze(-1)).double().sum())
    greedy = bool((lp.argmax(-1) == tgt).all())
    return ll, greedy, len(inp)


def zeroshot_fixture(model, tok, data, n_items, max_length):
    out = {}
    for name in ["piqa", "arc_easy", "arc_challenge", "boolq", "hellaswag", "winogrande"]:
        rows = []
        for i, (contexts, choices, conts, gold) in enumerate(task_docs(data, name, n_items)):
            reqs = []
            for c, k in zip(contexts, conts):
                ci, ki = encode_pair(tok, c, k)
                ll, greedy, fed = loglikelihood(model, ci, ki, max_length)
                reqs.append({"context": c, "continuation": k, "context_tokens": len(ci), "continuation_ids": ki,
                             "tokens_fed": fed, "ll": ll, "is_greedy": greedy})
            lls = [r["ll"] for r in reqs]
            pred = int(np.argmax(lls))
            pred_norm = int(np.argmax([l / len(c) for l, c in zip(lls, choices)]))
            rows.append({"doc_index": i, "gold": gold, "choices": choices, "requests": reqs, "pred": pred,
                         "pred_norm": pred_norm})
        out[name] = rows
        print(f"zeroshot {name}: {len(rows)} items", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared"))
    args = ap.parse_args()
    data = Path(args.data_dir)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model_bin = data / "models/stories260K/stories260K.bin"
    tok_bin = data / "models/stories260K/tok512.bin"
    tok = Llama2cTokenizer(tok_bin)
    with tempfile.TemporaryDirectory() as hf:
        subprocess.run([sys.executable, str(ROOT / "scripts/convert_llama2c_to_hf.py"), str(model_bin), "--tokenizer", str(tok_bin),
                        "--out", hf], check=True, stdout=subprocess.DEVNULL)
        model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32, attn_implementation="eager")
        model.eval()

    # Sanity: the shared golden sentence reference (BOS + sentence, summed NLL of 34 predictions).
    golden = json.loads((data / "models/stories260K/golden_ppl_reference.json").read_text())
    gids = tok.encode(golden["sentence"], bos=True)
    gnll = float(window_nlls(model, [gids], 1)[0].sum())
    assert len(gids) == golden["n_tokens"] and abs(gnll - golden["nll"]) < golden["tolerance"], (len(gids), gnll)

    raw_path = data / "datasets/wikitext2/wiki.test.raw"
    raw = raw_path.read_text(encoding="utf-8")
    fx = {
        "generator": {"script": "scripts/make_eval_fixtures.py", "transformers": transformers.__version__,
                      "torch": torch.__version__, "python": sys.version.split()[0],
                      "model": "LlamaForCausalLM (fp32, eager attention) from scripts/convert_llama2c_to_hf.py",
                      "tokenizer": "llama2.c run.c encode re-implemented in this script (BOS 1, dummy prefix, byte fallback +3)"},
        "model": "models/stories260K/stories260K.bin",
        "model_sha256": sha256_file(model_bin),
        "tokenizer": "models/stories260K/tok512.bin",
        "dataset": "datasets/wikitext2/wiki.test.raw",
        "dataset_sha256": sha256_file(raw_path),
        "golden_check": {"n_tokens": len(gids), "nll": gnll},
    }
    fx["gptq"] = gptq_fixture(model, tok, raw, 256, 4)
    print(f"gptq: {fx['gptq']['n_tokens']} tokens, {fx['gptq']['n_windows']} windows, ppl {fx['gptq']['ppl_all']:.4f}", file=sys.stderr)
    fx["llamacpp"] = llamacpp_fixture(model, tok, raw, 128, 2)
    print(f"llamacpp: ppl {fx['llamacpp']['ppl']:.4f} +- {fx['llamacpp']['uncertainty']:.4f}", file=sys.stderr)
    fx["zeroshot"] = {"max_length": 512, "add_bos": False, "tasks": zeroshot_fixture(model, tok, data, 4, 512)}

    # The task items above are all non-greedy for this model; a TinyStories prompt continued by the
    # model's own argmax tokens (their vocabulary text) gives is_greedy true cases too.
    probes = []
    for context in ["Once upon a time, there was a little", "Lily and Tom went to the park. They"]:
        ids = tok.encode(context, bos=False)
        with torch.no_grad():
            for _ in range(3):
                ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
        continuation = b"".join(tok.pieces[i] for i in ids[len(tok.encode(context, bos=False)):]).decode("utf-8")
        ci, ki = encode_pair(tok, context, continuation)
        ll, greedy, fed = loglikelihood(model, ci, ki, 512)
        probes.append({"context": context, "continuation": continuation, "continuation_ids": ki, "ll": ll, "is_greedy": greedy})
    fx["zeroshot"]["greedy_probes"] = probes
    print(f"greedy probes: {[(p['continuation'], p['is_greedy']) for p in probes]}", file=sys.stderr)

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "stories260k_eval.json"
    # lists of numbers on one line keep the file short and diffable
    text = re.sub(r"\[\s+([-0-9.e,\s]+?)\s+\]", lambda m: "[" + re.sub(r"\s+", "", m.group(1)) + "]",
                  json.dumps(fx, indent=1, ensure_ascii=False))
    path.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
