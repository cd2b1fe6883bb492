#!/usr/bin/python3
"""NLTK side of `braid bench parden`: scores the 1,072 stored PARDEN history pairs with
nltk.translate.bleu_score.sentence_bleu (the reference implementation) and prints JSON with
pairs per CPU-second (time.thread_time: the machine is shared) and a checksum (sum of scores) for each metric.  Never prints row text.

usage: /usr/bin/python3 bench/parden_nltk.py DATA_DIR [MIN_SECONDS]"""
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
    min_s = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    pairs = load(d + "benign_dataset.csv", "output") + load(d + "mistral_output.csv", "mistral_output")
    w_rate, w_sum = timed(window60, pairs, min_s)
    t_rate, t_sum = timed(trunc, pairs, min_s)
    print(json.dumps({"pairs": len(pairs), "window_pairs_per_s": w_rate, "window_sum": w_sum,
                      "trunc_pairs_per_s": t_rate, "trunc_sum": t_sum}))


if __name__ == "__main__":
    main()
