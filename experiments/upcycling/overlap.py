#!/usr/bin/python3
"""Train/validation leakage of `braid data fetch` output: near-duplicate documents.

A document is its word 8-gram shingles (lower-cased words, hashed to 64 bits); a validation
document is *leaked* when some training document shares a Jaccard similarity >= THRESH (0.5)
with it, found exactly: an inverted index from shingle to the training documents that hold it
gives, for every validation document, the intersection size with each candidate.

  overlap.py measure RAW OUT.json [DOMAIN..]   per domain: val docs, leaked docs and bytes,
                                               share of val 8-grams seen in train
  overlap.py dedupe RAW OUT_RAW DOMAIN..       copies RAW/<d>/{train,val}.txt to OUT_RAW with the
                                               leaked val documents dropped (the others as-is)
  overlap.py selftest                          checks the measure on a constructed case
Documents are separated by "\\n<|endoftext|>\\n" (src/text/corpus.h)."""
import hashlib, json, os, re, sys
from collections import defaultdict

SEP, N, THRESH = "\n<|endoftext|>\n", 8, 0.5


def shingles(text, n=N):
    w = re.findall(r"\w+", text.lower())
    if len(w) < n:
        return {h64(" ".join(w))} if w else set()
    return {h64(" ".join(w[i:i + n])) for i in range(len(w) - n + 1)}


def h64(s):
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")


def docs(path):
    t = open(path, encoding="utf-8", errors="replace").read()
    return [d for d in t.split(SEP) if d.strip()]


def leaked(train, val, thresh=THRESH):
    """indices of val documents with a train document at Jaccard >= thresh, and the share of all
    val shingles that occur anywhere in train"""
    tsh = [shingles(d) for d in train]
    index = defaultdict(list)
    for j, s in enumerate(tsh):
        for h in s:
            index[h].append(j)
    out, seen, total = [], 0, 0
    for i, d in enumerate(val):
        s = shingles(d)
        total += len(s)
        inter = defaultdict(int)
        for h in s:
            hits = index.get(h)
            if hits:
                seen += 1
                for j in hits:
                    inter[j] += 1
        best = max((c / (len(s) + len(tsh[j]) - c) for j, c in inter.items()), default=0.0)
        if best >= thresh:
            out.append(i)
    return out, (seen / total if total else 0.0)


def measure(raw, domains):
    res = {}
    for d in domains:
        tr, va = docs(f"{raw}/{d}/train.txt"), docs(f"{raw}/{d}/val.txt")
        bad, share = leaked(tr, va)
        res[d] = {"val_docs": len(va), "leaked_docs": len(bad),
                  "val_bytes": sum(len(x.encode()) for x in va),
                  "leaked_bytes": sum(len(va[i].encode()) for i in bad),
                  "val_8gram_share_in_train": share, "threshold": THRESH, "n": N}
    return res


def dedupe(raw, out, domains):
    for d in domains:
        os.makedirs(f"{out}/{d}", exist_ok=True)
        tr, va = docs(f"{raw}/{d}/train.txt"), docs(f"{raw}/{d}/val.txt")
        bad = set(leaked(tr, va)[0])
        keep = [x for i, x in enumerate(va) if i not in bad]
        for name, body in (("train.txt", SEP.join(tr)), ("val.txt", SEP.join(keep))):
            tmp = f"{out}/{d}/{name}.tmp"
            open(tmp, "w", encoding="utf-8").write(body)
            os.replace(tmp, f"{out}/{d}/{name}")  # atomic
        print(f"{d}: dropped {len(bad)} of {len(va)} val documents")


def selftest():
    base = " ".join(f"w{i}" for i in range(200))
    train = [base, "completely different words " * 20]
    near = base.replace("w100", "changed")  # 8 of ~193 shingles differ: Jaccard ~0.92
    far = " ".join(f"v{i}" for i in range(200))
    half = " ".join(f"w{i}" for i in range(60)) + " " + " ".join(f"u{i}" for i in range(140))
    bad, share = leaked(train, [near, far, half])
    assert bad == [0], bad  # near-copy leaked; unrelated and partial (Jaccard ~0.26) not
    assert 0.2 < share < 0.5, share
    assert leaked([base], [base])[0] == [0] and leaked([far], [base])[0] == []
    print("overlap selftest: ok")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "measure":
        raw, out = sys.argv[2], sys.argv[3]
        doms = sys.argv[4:] or sorted(x for x in os.listdir(raw) if os.path.isdir(f"{raw}/{x}"))
        r = measure(raw, doms)
        tmp = out + ".tmp"
        json.dump(r, open(tmp, "w"), indent=2)
        os.replace(tmp, out)
        for d, v in r.items():
            print(f"{d}: {v['leaked_docs']}/{v['val_docs']} val docs leaked, "
                  f"{100 * v['val_8gram_share_in_train']:.1f}% of val 8-grams in train")
    elif cmd == "dedupe":
        dedupe(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "selftest":
        selftest()
    else:
        sys.exit(__doc__)
