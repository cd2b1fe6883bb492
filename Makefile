# braid — one C11 code base, one program.  See README.md and docs/.
#
#   make                 build ./braid and libbraid.a
#   make test            install missing Debian packages, build, run every test binary
#   make SAN=address,undefined test   the same under ASan+UBSan (separate build dir)
#   make bench           benchmarks (speed goals are checked here, never in tests)
#   make demo            the main job end to end on real data
#   make fuzz            libFuzzer targets (clang), FUZZ_SECONDS each
#   make clean

CC       ?= cc
SAN      ?=
BUILD    ?= build$(if $(SAN),-san)
OPT      ?= -O3 -march=native
WARN      = -Wall -Wextra -Wshadow -Wstrict-prototypes
ifeq ($(CI),true)
WARN     += -Werror
endif
CFLAGS   += -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) -fopenmp -Isrc -MMD -MP
LDLIBS   += -lopenblas -ljansson -lpcre2-8 -lmicrohttpd -lcurl -lcsv -lpthread -lm
ifneq ($(SAN),)
CFLAGS   += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=$(SAN)
OPT       = -O1
endif
CFLAGS   += -I/usr/include/openblas -I/usr/include/x86_64-linux-gnu/openblas-pthread
LDFLAGS  += -fopenmp

# MPI (data-parallel training, docs/distributed.md): built in when Open MPI's headers are
# found (pkg-config ompi-c, else mpicc --showme), left out otherwise or with NO_MPI=1; only
# src/base/comm.c includes mpi.h.
ifneq ($(NO_MPI),1)
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link 2>/dev/null)
endif
ifneq ($(strip $(MPI_LIBS)),)
$(BUILD)/src/base/comm.o: CFLAGS += -DBR_HAVE_MPI $(MPI_CFLAGS)
LDLIBS   += $(MPI_LIBS)
endif

LIB_SRC  := $(sort $(wildcard src/*/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB      := $(BUILD)/libbraid.a
BIN      := $(if $(SAN),$(BUILD)/braid,braid)

.PHONY: all test bench demo deps fuzz clean tests
all: $(BIN) libbraid.a

libbraid.a: $(LIB)
	@if [ -z "$(SAN)" ]; then cp $(LIB) libbraid.a; fi

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

# kernels/ and nn/: float compares must if-convert for the loops to vectorise (docs/nn.md)
$(BUILD)/src/kernels/%.o $(BUILD)/src/nn/%.o: CFLAGS += -fno-trapping-math
# kernels/: one table per instruction set from the same sources, picked at start-up
# (docs/kernels.md).  *_portable: the compiler's baseline target (no -march); *_avx2, *_avx512:
# that instruction set whatever the build machine has.
$(BUILD)/src/kernels/%_portable.o: OPT := $(filter-out -march=% -mtune=% -mcpu=%,$(OPT))
ifeq ($(shell uname -m),x86_64)
$(BUILD)/src/kernels/%_avx2.o: CFLAGS += -mavx2 -mfma -mno-avx512f
$(BUILD)/src/kernels/%_avx512.o: CFLAGS += -mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx2 -mfma
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# the web console (src/serve/console.c includes the files of web/console/, embedded as C arrays)
WEB_SRC := $(sort $(wildcard web/console/*))
$(BUILD)/gen/console_files.inc: $(WEB_SRC) scripts/embed_web.sh
	@mkdir -p $(dir $@)
	bash scripts/embed_web.sh web/console $@
$(BUILD)/src/serve/console.o: $(BUILD)/gen/console_files.inc
$(BUILD)/src/serve/console.o: CFLAGS += -I$(BUILD)/gen

# llama.cpp's own quantizer for tests/test_lm_gguf.c, only where node-llama-cpp's libllama is
LLAMA_LIB := .npm-local/llama-cpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.4.0.so
REF_BIN   := $(if $(wildcard $(LLAMA_LIB)),$(BUILD)/tests/ref/llama_quantize)
$(BUILD)/tests/ref/llama_quantize: tests/ref/llama_quantize.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -g $(WARN) -o $@ $< -ldl

tests: $(TEST_BIN) $(BIN) $(REF_BIN)

deps:
	@bash scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory tests
	@BRAID=$(abspath $(BIN)) bash scripts/run_tests.sh $(TEST_BIN)

bench:
	@bash scripts/deps.sh bench
	@$(MAKE) --no-print-directory $(BIN)
	@bash bench/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

FUZZ_SECONDS ?= 60
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
fuzz: deps
	@bash scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_SRC)

clean:
	rm -rf build build-san build-fuzz braid libbraid.a

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d)
