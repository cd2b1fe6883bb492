#!/usr/bin/python3
"""Writes tests/ref/serve_tokenizer.json: a small byte-level BPE tokenizer in Hugging Face
tokenizer.json format (256 byte tokens, 95 merges learned from the text of Debian's
/usr/share/common-licenses/GPL-3, and <|endoftext|> = id 351) for the server tests, which need a
tokenizer but no particular vocabulary.  Pre-tokens for learning: runs of letters/digits with
their leading space, as GPT-2's pattern splits English text.

Run: /usr/bin/python3 tests/ref/gen_serve_tokenizer.py"""
import collections, json, os, re

HERE = os.path.dirname(os.path.abspath(__file__))
N_MERGES = 95


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def main():
    text = open("/usr/share/common-licenses/GPL-3", encoding="utf-8").read()
    b2u = bytes_to_unicode()
    words = collections.Counter(re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", text))
    seqs = {w: [b2u[b] for b in w.encode()] for w in words}
    vocab = {b2u[b]: b for b in range(256)}
    merges = []
    for _ in range(N_MERGES):
        pairs = collections.Counter()
        for w, s in seqs.items():
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += words[w]
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append(f"{a} {b}")
        vocab[a + b] = len(vocab)
        for w, s in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    eot = len(vocab)
    vocab["<|endoftext|>"] = eot
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": eot, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": merges},
    }
    with open(os.path.join(HERE, "serve_tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
