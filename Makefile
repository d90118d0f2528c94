# oneshot -- one process, one job, one exit code.
#
#   make            build/oneshot (and the test tools, the example plugin)
#   make deps       check for (and, as root, apt-get install) what is needed
#   make demo       deps, build, run the main job end to end on local parts
#   make test       deps, build, every test; last line "N passed, N failed"
#   make asan       the whole suite under ASan + UBSan (+ LeakSanitizer)
#   make seams      build/seams/oneshot: the test build with stop points
#   make bench      medians and ratios against the peers, in one run
#   make chaos      the fleet under random SIGKILLs and a broker restart (minutes)
#   make image-test the container image, built and run with podman
#   make install    PREFIX=/usr/local DESTDIR=
#   make static     build/oneshot-static: one static file, Debian 13's libraries
#   make install-static  it and its notice file into PREFIX/bin
#   make tls        build/tls/oneshot: with TLS to Redis (trixie's hiredis, fetched)

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
BUILD   ?= build
VERSION := 0.1.0

# cJSON is compiled in from the host's Debian source package (cjson, its
# patches applied), fetched once into CJSON_DIR by deploy/cjson_source.sh:
# libcjson-dev has no .a, and its shared library costs a replica ~0.1 ms
# to load, 6% of a Redis cycle (tests/README.md "Where a Redis cycle's time
# goes"). CJSON=system links the shared libcjson instead (offline builds).
CJSON     ?=
CJSON_DIR ?= build/cjson
ifeq ($(STATIC),1)
CJSON_CFLAGS := # the build root's /opt/cjson (STATIC_LIBS below)
else ifeq ($(CJSON),system)
CJSON_CFLAGS := $(shell pkg-config --cflags libcjson 2>/dev/null) -DONESHOT_CJSON_SHARED=1
CJSON_LIBS   := $(shell pkg-config --libs libcjson 2>/dev/null)
else
CJSON_CFLAGS := -I$(CJSON_DIR)/include
CJSON_SRC    := $(CJSON_DIR)/cJSON.c
CJSON_OBJ    := $(BUILD)/obj/cjson/cJSON.o
endif
# libmicrohttpd is linked statically, its GnuTLS references resolved by
# consumer/http/tls_stub.c: see there for why (about 3 ms per replica start).
# hiredis too: one shared library less to load saves a Redis replica
# ~0.3 ms of its ~3 ms (tests/e2e/redis_scale.sh's median, before/after).
# TLS to Redis (rediss://) needs hiredis >= 1.0 with libhiredis_ssl, and
# OpenSSL: HIREDIS_SSL=1 compiles the TLS half of consumer/redis/tls.c
# (-DONESHOT_HIREDIS_SSL=1) and links both. HIREDIS_PREFIX=DIR takes hiredis
# from a root unpacked there (DIR/usr/include/hiredis, DIR/usr/lib/<triplet>)
# instead of the system's. Debian 12's hiredis 0.14 has no TLS: the host
# build refuses rediss:// (`make tls` and the static build have it).
HIREDIS_SSL    ?=
HIREDIS_PREFIX ?=
ifneq ($(HIREDIS_PREFIX),)
HIREDIS_CFLAGS := -I$(HIREDIS_PREFIX)/usr/include -D_FILE_OFFSET_BITS=64
HIREDIS_LDIR   := -L$(firstword $(wildcard $(HIREDIS_PREFIX)/usr/lib/*-linux-gnu) $(HIREDIS_PREFIX)/usr/lib)
else
HIREDIS_CFLAGS := $(shell pkg-config --cflags hiredis 2>/dev/null)
endif
ifeq ($(HIREDIS_SSL),1)
HIREDIS_CFLAGS += -DONESHOT_HIREDIS_SSL=1
HIREDIS_LIBS   := -lhiredis_ssl -lhiredis
TLS_LIBS       := -lssl -lcrypto
else
HIREDIS_LIBS   := -lhiredis
endif
MHD_LIBS := $(HIREDIS_LDIR) -Wl,-Bstatic -lmicrohttpd $(HIREDIS_LIBS) -Wl,-Bdynamic $(TLS_LIBS)
# librdkafka is linked only into the Kafka module (consumer/kafka/module.h).
KAFKA_PC := rdkafka
WARN    := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wwrite-strings
# Warnings are errors in CI (and whenever WERROR=1).
ifneq ($(CI)$(WERROR),)
WARN    += -Werror
endif
OPT     ?= -O2 -g
CFLAGS  ?=
# SEAMS=1: the test build with stop points (consumer/seam.h), never installed.
SEAM_DEF := $(if $(SEAMS),-DONESHOT_SEAMS)
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) $(OPT) $(SEAM_DEF) -DONESHOT_VERSION='"$(VERSION)"' \
           $(CJSON_CFLAGS) $(HIREDIS_CFLAGS) $(shell pkg-config --cflags libmicrohttpd $(KAFKA_PC) 2>/dev/null)
LDLIBS  += $(CJSON_LIBS) $(MHD_LIBS) -lpthread -ldl -lm
# The binary exports its symbols (logging, buffers, envelopes...) to the
# Kafka module and to core plugins that want them.
BIN_LDFLAGS := -rdynamic

SRC_COMMON   := $(wildcard common/*.c)
SRC_CONFIG   := $(wildcard config/*.c)
# One folder per broker (consumer/redis, consumer/http, any new one; but
# consumer/kafka, the module, of which only its driver.c is in the binary),
# the cores in consumer/cores.
CONSUMER_DIRS := consumer $(filter-out consumer/kafka,$(patsubst %/,%,$(wildcard consumer/*/)))
SRC_CONSUMER := $(filter-out consumer/main.c,$(wildcard $(CONSUMER_DIRS:%=%/*.c))) consumer/kafka/driver.c
SRC_KAFKA    := $(filter-out consumer/kafka/driver.c,$(wildcard consumer/kafka/*.c))
HDRS         := $(wildcard common/*.h config/*.h $(CONSUMER_DIRS:%=%/*.h) consumer/kafka/*.h include/oneshot/*.h)
LIB_SRC      := $(SRC_COMMON) $(SRC_CONFIG) $(SRC_CONSUMER)
LIB_OBJ      := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC     := $(wildcard tests/unit/*.c)

BIN      := $(BUILD)/oneshot
KAFKA_SO := $(BUILD)/oneshot-kafka.so
UNIT     := $(BUILD)/unit_tests
TOOLS    := $(BUILD)/kafka_admin $(BUILD)/startbench $(BUILD)/bare_hiredis
PLUGINS  := $(patsubst tests/plugins/%.c,$(BUILD)/plugins/%.so,$(wildcard tests/plugins/*.c))

.PHONY: all deps demo test test-unit test-e2e asan bench install uninstall clean image-test fuzz chaos seams \
        fuzz-build fuzzers static install-static tls

all: $(BIN) $(KAFKA_SO) $(UNIT) $(TOOLS) $(PLUGINS)

# Every object waits for cJSON's header (order-only: it is fetched once).
$(BUILD)/obj/%.o: %.c $(HDRS) | $(CJSON_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

ifneq ($(CJSON_SRC),)
# cJSON's own code, with its own dialect and without our warnings.
$(CJSON_SRC):
	@bash deploy/cjson_source.sh $(CJSON_DIR)

$(CJSON_OBJ): $(CJSON_SRC)
	@mkdir -p $(dir $@)
	$(CC) -std=c89 $(OPT) -fno-semantic-interposition -I$(CJSON_DIR)/include/cjson -c $< -o $@
endif

# The Makefile is a prerequisite: a change in how it links relinks.
$(BIN): $(LIB_OBJ) $(CJSON_OBJ) $(BUILD)/obj/consumer/main.o Makefile
	$(CC) $(CFLAGS) $(filter %.o,$^) -o $@ $(BIN_LDFLAGS) $(LDFLAGS) $(LDLIBS)

$(BUILD)/pic/%.o: %.c $(HDRS) | $(CJSON_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(KAFKA_SO): $(SRC_KAFKA:%.c=$(BUILD)/pic/%.o)
	$(CC) $(CFLAGS) -shared $^ -o $@ $(LDFLAGS) $(shell pkg-config --libs $(KAFKA_PC) 2>/dev/null) -lpthread

$(UNIT): $(LIB_OBJ) $(CJSON_OBJ) $(UNIT_SRC) tests/unit/test.h
	$(CC) $(CFLAGS) -Itests/unit $(UNIT_SRC) $(LIB_OBJ) $(CJSON_OBJ) -o $@ $(LDFLAGS) $(LDLIBS)

# The tests' Admin API client for the real Kafka broker (topics, groups).
$(BUILD)/kafka_admin: tests/brokers/kafka_admin.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(shell pkg-config --libs rdkafka 2>/dev/null) -lpthread

$(BUILD)/startbench: tests/bench/startbench.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS)

$(BUILD)/bare_hiredis: tests/bench/bare_hiredis.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(shell pkg-config --libs hiredis 2>/dev/null)

$(BUILD)/plugins/%.so: tests/plugins/%.c $(wildcard include/oneshot/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude -fPIC -shared $< -o $@

deps:
	@sh tests/harness/deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@bash tests/harness/demo.sh

test: deps
	@$(MAKE) --no-print-directory all seams
	@bash tests/harness/run.sh

# The binary the fault tests stop between steps (consumer/seam.h).
seams:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/seams SEAMS=1 $(BUILD)/seams/oneshot

# A TLS-capable build for the rediss:// tests (tests/e2e/redis_tls.sh) on a
# Debian 12 host: Debian 13's hiredis 1.2 (with libhiredis_ssl) unpacked
# into build/hiredis-trixie by tests/brokers/tls/hiredis_trixie.sh (apt-get download
# with a private list, bounded in time), linked statically; OpenSSL is the
# host's. The binary, its Kafka module and the unit tests, in build/tls.
TLS_BUILD ?= build/tls
tls:
	@bash tests/brokers/tls/hiredis_trixie.sh build/hiredis-trixie
	@$(MAKE) --no-print-directory BUILD=$(TLS_BUILD) HIREDIS_SSL=1 HIREDIS_PREFIX=$(CURDIR)/build/hiredis-trixie \
	  $(TLS_BUILD)/oneshot $(TLS_BUILD)/oneshot-kafka.so $(TLS_BUILD)/unit_tests

test-unit: $(UNIT)
	@$(UNIT)

# The sanitizer build lives in its own folder so it never mixes with the
# normal objects; the suite then runs the sanitized binary.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan OPT="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" all seams \
	  tls TLS_BUILD=build/asan/tls
	@ONESHOT_BUILD=build/asan \
	 ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:exitcode=99 \
	 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=99 \
	 bash tests/harness/run.sh

# Fuzzing with libFuzzer: each tests/fuzz/fuzz_X.c becomes $(BUILD)/fuzz/fuzz_X,
# linked with the product objects rebuilt in $(BUILD)/fuzz by clang with
# coverage, ASan and UBSan. `make fuzz` runs each for FUZZ_SECONDS from its
# corpus tests/fuzz/corpus/X (new inputs go to $(BUILD)/fuzz/corpus/X);
# `make test` runs a short smoke of each (tests/e2e/fuzz.sh).
FUZZ_SECONDS ?= 60
FUZZ_OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
            -fno-sanitize-recover=all -Wno-format-nonliteral
FUZZERS  := $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzz CC=clang OPT="$(FUZZ_OPT)" fuzzers

fuzzers: $(FUZZERS)

$(BUILD)/liboneshot.a: $(LIB_OBJ) $(CJSON_OBJ)
	rm -f $@ && ar rcs $@ $^

# tls_stub.o by name: libmicrohttpd.a comes after the archive in the link.
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/liboneshot.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer $< $(BUILD)/obj/consumer/http/tls_stub.o $(BUILD)/liboneshot.a \
	  -o $@ $(LDFLAGS) $(LDLIBS)

fuzz: deps fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) ONESHOT_BUILD=$(BUILD) bash tests/fuzz/run.sh

# The container image built and run with podman (also part of `make test`).
image-test: deps
	@ONESHOT_IMAGE_SUMMARY=1 bash tests/e2e/image.sh

# The static rows need build/oneshot-static (as root: make static).
bench: deps
	@$(MAKE) --no-print-directory all static
	@bash tests/bench/run.sh

# 200 jobs per source under random SIGKILLs and one broker restart; too
# long for `make test`, which runs tests/e2e/chaos_smoke.sh (40 jobs).
chaos: deps
	@$(MAKE) --no-print-directory all
	@ONESHOT_BUILD=$(BUILD) bash tests/chaos/chaos.sh

install: $(BIN) $(KAFKA_SO)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/oneshot
	install -d $(DESTDIR)$(PREFIX)/lib/oneshot
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/oneshot
	install -m 0644 $(KAFKA_SO) $(DESTDIR)$(PREFIX)/lib/oneshot/
	if [ -d include/oneshot ]; then install -m 0644 include/oneshot/*.h $(DESTDIR)$(PREFIX)/include/oneshot/; fi
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 man/oneshot.1 $(DESTDIR)$(PREFIX)/share/man/man1/oneshot.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/oneshot $(DESTDIR)$(PREFIX)/share/man/man1/oneshot.1
	rm -rf $(DESTDIR)$(PREFIX)/lib/oneshot
	rm -rf $(DESTDIR)$(PREFIX)/include/oneshot

clean:
	rm -rf build

# --- the static file (deploy/README.md "Static build") ---
# `make static` (as root): deploy/static/build.sh makes or reuses the
# Debian 13 build root in STATIC_ROOT (debootstrap; outside the tree and
# outside build/, so `make clean` keeps it; remade when its recipe,
# deploy/static/buildroot.sh, changes), copies the sources in and runs this
# Makefile there with STATIC=1; out come $(BUILD)/oneshot-static, its
# debug symbols and its notice file. The host's own build above is untouched.
STATIC_ROOT ?= /var/cache/oneshot/trixie-build
STATIC_BIN  := $(BUILD)/oneshot-static

static:
	@bash deploy/static/build.sh "$(STATIC_ROOT)" "$(BUILD)" $(if $(CI)$(WERROR),WERROR=1)

install-static:
	@test -x $(STATIC_BIN) || { echo "no $(STATIC_BIN): run 'make static' first" >&2; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(STATIC_BIN) $(DESTDIR)$(PREFIX)/bin/oneshot
	install -m 0644 $(STATIC_BIN).NOTICE $(DESTDIR)$(PREFIX)/bin/oneshot.NOTICE

ifeq ($(STATIC),1)
# Inside the build root only. Every library is an archive: librdkafka and
# cJSON rebuilt from source into /opt (buildroot.sh says why), the rest
# Debian's own .a files. hiredis 1.x with its SSL module, so the rediss://
# code (ONESHOT_HIREDIS_SSL) is in; Kafka linked in (ONESHOT_KAFKA_BUILTIN,
# consumer/kafka/driver.c): no dlopen at run time, no -rdynamic.
# --gc-sections drops what no code reaches. -lcjson before -lrdkafka:
# librdkafka.a carries its own copy of cJSON (1.7.14) under the same names,
# and the first archive to define them wins: so both use trixie's cJSON.
STATIC_OBJ := $(LIB_OBJ) $(BUILD)/obj/consumer/main.o $(SRC_KAFKA:%.c=$(BUILD)/obj/%.o)
CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(OPT) -ffunction-sections -fdata-sections \
          -DONESHOT_VERSION='"$(VERSION)"' -DONESHOT_STATIC=1 -DONESHOT_HIREDIS_SSL=1 -DONESHOT_KAFKA_BUILTIN=1 \
          -isystem /opt/rdkafka/include -isystem /opt/cjson/include
STATIC_LIBS := -static -Wl,--gc-sections -L/opt/rdkafka/lib -L/opt/cjson/lib \
               -lcjson -lrdkafka -lmicrohttpd -lhiredis_ssl -lhiredis -lssl -lcrypto -lzstd -llz4 -lz -lpthread -lm

# gcc's start file for -static, crtbeginT.o, registers the whole .eh_frame
# with libgcc's unwinder, which walks every one of the binary's FDEs (10 MB
# of code) to find its range at start and again at exit: a sixth of a
# one-job run's CPU. The plain crtbegin.o, put first in gcc's start-file
# search (-B) under that name, registers nothing; the unwinder, if ever
# asked (pthread_exit), finds frames through PT_GNU_EH_FRAME as in any
# dynamic program, which needs --eh-frame-hdr (gcc leaves it out for -static).
STATIC_CRT := $(BUILD)/crt/crtbeginT.o
$(STATIC_CRT):
	@mkdir -p $(dir $@)
	cp "$$($(CC) -print-file-name=crtbegin.o)" $@

# The symbols go to a .debug file beside it (gdb finds it by the debuglink).
$(STATIC_BIN): $(STATIC_OBJ) $(STATIC_CRT) Makefile
	$(CC) $(CFLAGS) -B$(dir $(STATIC_CRT)) -Wl,--eh-frame-hdr $(filter %.o,$(filter-out $(STATIC_CRT),$^)) \
	  -o $@.full $(LDFLAGS) $(STATIC_LIBS)
	objcopy --only-keep-debug $@.full $@.debug
	objcopy --strip-all --add-gnu-debuglink=$@.debug $@.full $@
	rm -f $@.full
endif
