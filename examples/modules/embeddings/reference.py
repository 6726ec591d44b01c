#!/usr/bin/env python3
"""Reference all-MiniLM-L6-v2 sentence embeddings, independent of the module.

A plain numpy implementation, in float64, of what sentence-transformers
computes for all-MiniLM-L6-v2: BERT's basic + WordPiece tokenizer (from
vocab.txt, as transformers' BertTokenizer with do_lower_case), truncation to
256 tokens, the BERT forward pass over model.safetensors (read with a small
parser of the safetensors format), mean pooling over the tokens, L2
normalisation. It shares no code with the candle program (src/main.rs), not
even the tokenizer (that one uses tokenizer.json through the `tokenizers`
crate); the end-to-end test lilypad-cli/tests/inference_e2e.rs compares the
two.

Usage: reference.py MODEL_DIR TEXTS_JSON
Prints {"embeddings": [[384 floats], ...], "tokens": [n, ...]} as JSON.
Needs numpy only (examples/modules/embeddings/setup-reference.sh puts it in
a venv under target/).
"""

import json
import math
import struct
import sys
import unicodedata

import numpy as np

MAX_TOKENS = 256


# --- the tokenizer: transformers' BasicTokenizer + WordpieceTokenizer -------

def _is_whitespace(ch):
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def _is_control(ch):
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_chinese(cp):
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokenize(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            out.append(" ")
        elif _is_chinese(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    words = []
    for word in "".join(out).split():
        word = word.lower()
        word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    words.append(current)
                    current = ""
                words.append(ch)
            else:
                current += ch
        if current:
            words.append(current)
    return words


def wordpiece(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = piece
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


def tokenize(text, vocab):
    pieces = [p for w in basic_tokenize(text) for p in wordpiece(w, vocab)]
    pieces = ["[CLS]"] + pieces[: MAX_TOKENS - 2] + ["[SEP]"]
    return [vocab[p] for p in pieces]


# --- the weights: model.safetensors ----------------------------------------

def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    dtypes = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in dtypes:  # embeddings.position_ids (I64): not a weight
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[base + start : base + end], dtype=dtypes[info["dtype"]])
        tensors[name] = array.reshape(info["shape"]).astype(np.float64)
    return tensors


# --- the model: BERT, mean pooling, normalisation ---------------------------

_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def embed(ids, t, config):
    p = "encoder.layer.{}."
    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    n = len(ids)
    x = (
        t["embeddings.word_embeddings.weight"][ids]
        + t["embeddings.position_embeddings.weight"][:n]
        + t["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)

    def linear(x, name):
        return x @ t[name + ".weight"].T + t[name + ".bias"]

    for i in range(config["num_hidden_layers"]):
        q = p.format(i)
        d = x.shape[1] // heads
        split = lambda y: y.reshape(n, heads, d).transpose(1, 0, 2)  # noqa: E731
        qh = split(linear(x, q + "attention.self.query"))
        kh = split(linear(x, q + "attention.self.key"))
        vh = split(linear(x, q + "attention.self.value"))
        scores = qh @ kh.transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        ctx = (scores @ vh).transpose(1, 0, 2).reshape(n, heads * d)
        attn = linear(ctx, q + "attention.output.dense")
        x = layer_norm(attn + x, t[q + "attention.output.LayerNorm.weight"], t[q + "attention.output.LayerNorm.bias"], eps)
        inter = gelu(linear(x, q + "intermediate.dense"))
        out = linear(inter, q + "output.dense")
        x = layer_norm(out + x, t[q + "output.LayerNorm.weight"], t[q + "output.LayerNorm.bias"], eps)

    pooled = x.mean(0)  # one text, no padding: every token counts
    return pooled / max(np.linalg.norm(pooled), 1e-12)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: reference.py MODEL_DIR TEXTS_JSON")
    model_dir, texts = sys.argv[1], json.loads(sys.argv[2])
    if isinstance(texts, str):
        texts = [texts]
    with open(f"{model_dir}/vocab.txt", encoding="utf-8") as f:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
    with open(f"{model_dir}/config.json", encoding="utf-8") as f:
        config = json.load(f)
    tensors = load_safetensors(f"{model_dir}/model.safetensors")
    ids = [tokenize(text, vocab) for text in texts]
    vectors = [embed(i, tensors, config).tolist() for i in ids]
    json.dump({"embeddings": vectors, "tokens": [len(i) for i in ids]}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
