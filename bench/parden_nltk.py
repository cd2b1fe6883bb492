#!/usr/bin/python3
"""NLTK side of `braid bench parden`: scores the 1,072 stored PARDEN history pairs with
nltk.translate.bleu_score.sentence_bleu (the reference implementation).  Never prints row text.

usage: /usr/bin/python3 bench/parden_nltk.py DATA_DIR
Reads commands on stdin, one per line, "window SECONDS" or "trunc SECONDS", and answers each
with one JSON line {"pairs_per_s": ..., "sum": ...}: pairs per CPU-second of this thread
(time.thread_time: the machine may be shared) over whole passes lasting at least SECONDS, and
the sum of one pass's scores as a checksum.  braid interleaves these rounds with its own."""
import csv
import json
import re
import sys
import time
import warnings

from nltk.translate.bleu_score import sentence_bleu

warnings.filterwarnings("ignore")


def load(path, out_col):
    with open(path, newline="", encoding="utf-8") as f:
        return [(r[out_col], r["repeated"]) for r in csv.DictReader(f)]


def window60(ref, pred, w=60):
    # the reference's final metric (docs/parden.md)
    ref = ref.replace("/n", "")
    pred = pred.replace("/n", "")
    k = min(w, len(ref.split(" ")), len(pred.split(" ")))
    ref = re.sub(r"\s+", " ", " ".join(ref.strip().split(" ")[:k]))
    pred = re.sub(r"\s+", " ", " ".join(pred.strip().split(" ")[:k]))
    return sentence_bleu([ref], pred)


def trunc(ref, pred):
    n = min(len(ref), len(pred))
    return sentence_bleu([ref[:n]], pred[:n])


def timed(fn, pairs, min_s):
    reps, t0 = 0, time.thread_time()
    while True:
        total = 0.0
        for r, p in pairs:
            total += fn(r, p)
        reps += 1
        dt = time.thread_time() - t0
        if dt >= min_s:
            return reps * len(pairs) / dt, total


def main():
    d = sys.argv[1] + "/history/71add30/"
    pairs = load(d + "benign_dataset.csv", "output") + load(d + "mistral_output.csv", "mistral_output")
    metrics = {"window": window60, "trunc": trunc}
    for line in sys.stdin:
        name, secs = line.split()
        rate, total = timed(metrics[name], pairs, float(secs))
        print(json.dumps({"pairs_per_s": rate, "sum": total}), flush=True)


if __name__ == "__main__":
    main()
