#!/usr/bin/env bash
# make fuzz: build each fuzz/fuzz_*.c with clang's libFuzzer (+ASan, UBSan) and run it for
# $1 seconds on its seed corpus (fuzz/corpus/<name>/).  Crashes are saved in build-fuzz/.
set -eu
secs=$1; shift
cd "$(dirname "$0")/.."
mkdir -p build-fuzz
LIB_SRC=$(ls src/*/*.c)
for f in "$@"; do
  name=$(basename "$f" .c)
  echo "== $name (${secs}s)"
  clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fopenmp -Isrc \
    -I/usr/include/x86_64-linux-gnu/openblas-pthread -o "build-fuzz/$name" "$f" $LIB_SRC \
    -lopenblas -ljansson -lpcre2-8 -lmicrohttpd -lcurl -lcsv -lpthread -lm
  mkdir -p "fuzz/corpus/$name" "build-fuzz/$name.corpus"
  (cd build-fuzz && "./$name" -max_total_time="$secs" -artifact_prefix="$name-" "$name.corpus" "../fuzz/corpus/$name")
done
