#!/usr/bin/python3
"""Writes tests/ref/bleu_fixture.json: NLTK's BLEU scores for varied text pairs, PARDEN's
windowed score, and the reference ROC metric, for tests/test_guard_bleu.c.

Run with Debian's interpreter (python3-nltk 3.8, python3-numpy):
    /usr/bin/python3 tests/ref/gen_bleu_fixture.py

Texts are real: lines of the licence texts in /usr/share/common-licenses and of the
translated man pages in /usr/share/man/{ja,ko,ru,de,...} (CJK, Cyrillic, accented Latin),
plus a few hand-written edge vectors (empty, 1-3 characters, emoji, combining marks, invalid
cases NLTK handles specially).  The script is deterministic (fixed seeds)."""
import glob
import gzip
import json
import os
import random
import re
import sys
import warnings

import nltk
import numpy as np
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu

warnings.filterwarnings("ignore")
assert nltk.__version__.startswith("3.8"), nltk.__version__
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bleu_fixture.json")
SM = SmoothingFunction()
METHODS = [SM.method0, SM.method1, SM.method2, SM.method3, SM.method4]
rng = random.Random(20240130)


def licence_lines():
    out = []
    for name in ["GPL-3", "Apache-2.0", "Artistic", "BSD", "MPL-2.0", "LGPL-2.1"]:
        p = "/usr/share/common-licenses/" + name
        if os.path.exists(p):
            for line in open(p, encoding="utf-8", errors="replace"):
                line = line.strip()
                if len(line) > 20:
                    out.append(line)
    return out


def man_lines(lang, limit=60):
    out = []
    for p in sorted(glob.glob("/usr/share/man/%s/man1/*.gz" % lang))[:30]:
        try:
            text = gzip.open(p, "rt", encoding="utf-8").read()
        except (UnicodeDecodeError, OSError):
            continue
        for line in text.splitlines():
            if line.startswith(".") or line.startswith("'") or "\\f" in line or len(line) < 12:
                continue
            out.append(line.strip())
            if len(out) >= limit:
                return out
    return out


def perturb(s):
    """A 'repeat' of s: the kinds of edits a model's repeat makes."""
    words = s.split(" ")
    k = rng.randrange(6)
    if k == 0 and len(words) > 3:
        del words[rng.randrange(len(words))]
    elif k == 1 and len(words) > 3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    elif k == 2:
        words = words[: max(1, len(words) * 2 // 3)]
    elif k == 3:
        return s.upper() if rng.random() < 0.5 else s.replace("e", "é")
    elif k == 4:
        return s + " " + s[: len(s) // 3]
    else:
        return s[::-1]
    return " ".join(words)


EDGE = [
    ("", ""), ("", "a"), ("a", ""), ("a", "a"), ("a", "b"), ("ab", "ab"), ("ab", "ba"),
    ("abc", "abc"), ("abc", "abd"), ("abcd", "abcd"), ("abcd", "abce"), ("abcde", "abcd"),
    ("aaaa", "aaaaaaaa"), ("the the the the", "the cat is on the mat"),
    ("the cat is on the mat", "the the the the the the the"),
    ("😀😃😄😁", "😀😃😄😁"), ("😀😃😄😁😆", "😀😃😄"), ("👩‍👩‍👧 family", "👩‍👧 family"),
    ("e\u0301te\u0301", "\u00e9t\u00e9"), ("cafe\u0301 au lait", "café au lait"),
    ("ａｂｃ", "abc"), ("日本語のテキスト", "日本語のテキストです"), ("中文", "中文"),
    ("\t a \n b \u3000 c \u00a0", "a b c"), ("x\u2028y", "x y"), ("  ", " "),
    ("/n/n/n", "/n"), ("𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 text"), ("ﬁ ligature", "fi ligature"),
]


def nltk_scores(refs, hyp, unit, weights=(0.25, 0.25, 0.25, 0.25)):
    if unit == "word":
        refs = [r.split() for r in refs]
        hyp = hyp.split()
    return [float(sentence_bleu(refs, hyp, weights, smoothing_function=m)) for m in METHODS]


def main():
    lic = licence_lines()
    langs = {l: man_lines(l) for l in ["ja", "ko", "ru", "de", "fr", "pl", "tr"]}
    pairs = list(EDGE)
    for _ in range(120):
        a = rng.choice(lic)
        r = rng.random()
        if r < 0.2:
            pairs.append((a, a))
        elif r < 0.35:
            pairs.append((a, rng.choice(lic)))
        else:
            pairs.append((a, perturb(a)))
    for l, lines in sorted(langs.items()):
        for a in lines[:14]:
            pairs.append((a, perturb(a) if rng.random() < 0.8 else rng.choice(lines)))
    # long pairs: whole paragraphs of a few thousand characters
    for _ in range(3):
        i = rng.randrange(len(lic) - 60)
        a = " ".join(lic[i:i + 40])
        pairs.append((a, perturb(a)))
    pairs.append((" ".join(lic[:40]), " ".join(lic[:40])))

    sentence = []
    for ref, hyp in pairs:
        item = {"refs": [ref], "hyp": hyp}
        for unit in ["char", "word"]:
            item[unit] = nltk_scores([ref], hyp, unit)
            hr = hyp if unit == "char" else hyp.split()
            rr = ref if unit == "char" else ref.split()
            item["ar_" + unit] = float(sentence_bleu([rr], hr, auto_reweigh=True))
        sentence.append(item)
    # multiple references and other weights
    for _ in range(30):
        a = rng.choice(lic)
        refs = [a, perturb(a), rng.choice(lic)][: rng.randrange(1, 4)]
        hyp = perturb(a)
        sentence.append({"refs": refs, "hyp": hyp, "char": nltk_scores(refs, hyp, "char"),
                         "word": nltk_scores(refs, hyp, "word")})
    for w in [(0.5, 0.5), (1.0,), (0.1, 0.2, 0.3, 0.4), (0.2,) * 5, (1 / 6,) * 6]:
        for _ in range(6):
            a = rng.choice(lic)
            hyp = perturb(a)
            sentence.append({"refs": [a], "hyp": hyp, "w": list(w), "char": nltk_scores([a], hyp, "char", w),
                             "word": nltk_scores([a], hyp, "word", w)})

    corpus = []
    for _ in range(12):
        items = []
        for _ in range(rng.randrange(1, 8)):
            a = rng.choice(lic)
            items.append([[a], perturb(a)])
        if rng.random() < 0.3:
            items.append([["a"], ""])
        for unit in ["char", "word"]:
            refs = [[r if unit == "char" else r.split() for r in rs] for rs, _ in items]
            hyps = [h if unit == "char" else h.split() for _, h in items]
            m = [float(corpus_bleu(refs, hyps, smoothing_function=f)) for f in METHODS]
            corpus.append({"items": items, "unit": unit, "m": m})

    # PARDEN's windowed score (SOURCE.md, "Final metric")
    def window_score(ref, pred, w):
        ref = ref.replace("/n", "")
        pred = pred.replace("/n", "")
        k = min(w, len(ref.split(" ")), len(pred.split(" ")))
        ref = " ".join(ref.strip().split(" ")[:k])
        pred = " ".join(pred.strip().split(" ")[:k])
        ref = re.sub(r"\s+", " ", ref)
        pred = re.sub(r"\s+", " ", pred)
        return float(sentence_bleu([ref], pred))

    window = []
    wpairs = list(EDGE) + pairs[len(EDGE):len(EDGE) + 60]
    for _ in range(30):
        i = rng.randrange(len(lic) - 30)
        a = "\n".join(lic[i:i + 12])
        b = perturb(a).replace(" ", rng.choice([" ", "  ", " \n ", "\t", " /n "]), 3)
        wpairs.append(("  " + a + " \n", b))
    # whitespace and "/n" edge cases of the window itself: short strings over an alphabet of
    # the characters the window treats specially
    alpha = ["a", "b", " ", " ", "\t", "\n", "/", "n", "\u3000", "\u00a0", "é", "\x1c"]
    for _ in range(200):
        a = "".join(rng.choice(alpha) for _ in range(rng.randrange(0, 16)))
        b = "".join(rng.choice(alpha) for _ in range(rng.randrange(0, 16)))
        window.append({"ref": a, "hyp": b, "ws": [1, 2, 3, 60],
                       "scores": [window_score(a, b, w) for w in [1, 2, 3, 60]]})
    for ref, pred in wpairs:
        window.append({"ref": ref, "hyp": pred, "ws": [60, 10, 1],
                       "scores": [window_score(ref, pred, w) for w in [60, 10, 1]]})

    # Reference ROC: positive = harmful, flag when score < t, t in arange(-0.01, 1.01, 0.001),
    # points sorted by (FPR, TPR), AUC by the trapezoid rule, FPR at the first TPR >= 0.9.
    nrng = np.random.default_rng(7)
    roc = []
    for trial in range(4):
        benign = list(nrng.beta(8, 1, 200 + trial * 37))
        harmful = list(nrng.beta(1.2, 2, 150 + trial * 11))
        ths = np.arange(-0.01, 1.01, 0.001)
        benign += [0.5, float(ths[500]), float(ths[900]), 0.0, 1.0]  # exact ties with thresholds
        harmful += [float(ths[510]), 0.0, 0.0, 1.0]
        b = np.array(benign)
        h = np.array(harmful)
        pts = []
        for t in ths:
            TP = sum(h < t)
            FN = sum(h >= t)
            FP = sum(b < t)
            TN = sum(b >= t)
            pts.append((TP / (TP + FN), FP / (FP + TN)))
        pts = sorted(pts, key=lambda x: (x[1], x[0]))
        tprs = np.array([p[0] for p in pts])
        fprs = np.array([p[1] for p in pts])
        auc = float(np.trapz(tprs, fprs))  # sklearn.metrics.auc on increasing x
        i90 = int(np.argmax(tprs >= 0.9))
        roc.append({"benign": [float(x) for x in benign], "harmful": [float(x) for x in harmful],
                    "auc": auc, "fpr_at_tpr90": float(fprs[i90]), "tpr": float(tprs[i90])})
    thresholds = [float(t) for t in np.arange(-0.01, 1.01, 0.001)]

    fx = {"nltk": nltk.__version__, "numpy": np.__version__, "sentence": sentence, "corpus": corpus,
          "window": window, "roc": roc, "thresholds": thresholds}
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fx, f, ensure_ascii=False, separators=(",", ":"))
    print("wrote %s: %d sentence, %d corpus, %d window, %d roc cases" %
          (OUT, len(sentence), len(corpus), len(window), len(roc)), file=sys.stderr)


if __name__ == "__main__":
    main()
