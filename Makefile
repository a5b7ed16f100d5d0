# lockhub — GNU make. pkg-config finds every library; the core of the daemon is a
# static library (liblockhub.a) that lockhubd, lockhubctl, lockhub-sim and every test link.
#
#   make            build lockhubd, lockhubctl and lockhub-sim
#   make check      install missing packages, unit tests, the same under ASan+UBSan,
#                   fuzz corpora replay, then the integration tests
#   make demo       lockhubd on three simulated locks, with a local broker (Ctrl-C stops)
#   make fuzz       run every libFuzzer target (FUZZ_SECONDS each, default 60)
#   make bench      optimised build in build/bench, then the benchmarks (BENCHMARKS.md)
#   make soak       a simulated month of use with random faults (tests/soak/soak.sh)
#   make install    DESTDIR= and PREFIX= honoured

VERSION    := 0.1.0
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
DATADIR    ?= $(PREFIX)/share/lockhub
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
CATALOGDIR ?= $(PREFIX)/lib/systemd/catalog
DBUSPOLICYDIR ?= $(SYSCONFDIR)/dbus-1/system.d

PKG_CONFIG ?= pkg-config
PKGS       := libsystemd libmosquitto sqlite3 libsodium json-c
CC         ?= cc
CFLAGS     ?= -O2 -g

# SAN=1 builds everything again, separately, with ASan+UBSan.
ifeq ($(SAN),1)
BUILD      ?= build/asan
SANFLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD      ?= build
SANFLAGS   :=
endif

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wformat-signedness -Wmissing-prototypes \
	-Wstrict-prototypes -Wmissing-declarations -Wold-style-definition -Wnested-externs \
	-Wpointer-arith -Wundef -Wvla -Wimplicit-fallthrough=5 -Wdate-time -Wnull-dereference \
	-Wlogical-op -Wduplicated-cond -Wduplicated-branches -Wswitch-enum -Wno-unused-parameter

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

ALL_CPPFLAGS := -D_GNU_SOURCE -DLOCKHUB_VERSION='"$(VERSION)"' -DLOCKHUB_SYSCONFDIR='"$(SYSCONFDIR)"' \
	-DLOCKHUB_DATADIR='"$(DATADIR)"' -Iinclude -I$(BUILD)/gen $(CPPFLAGS)
ALL_CFLAGS   := -std=c11 $(WARNINGS) $(PKG_CFLAGS) $(SANFLAGS) -MMD -MP $(CFLAGS)
ALL_LDFLAGS  := $(SANFLAGS) $(LDFLAGS)
LIBS         := $(PKG_LIBS) -lm

LIB_SRCS  := $(filter-out src/main.c,$(wildcard src/*.c)) $(filter-out src/ctl/%,$(wildcard src/*/*.c))
CTL_SRCS  := $(wildcard src/ctl/*.c)
SIM_SRCS  := $(wildcard tests/sim/*.c)
GEN_SRCS  := $(BUILD)/gen/sql-migrations.c
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz-*.c)
TOOL_SRCS := $(wildcard tests/tools/*.c)

# V=1 shows full commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB_OBJS  := $(call obj,$(LIB_SRCS)) $(BUILD)/obj/gen/sql-migrations.o
LIB       := $(BUILD)/liblockhub.a
LOCKHUBD  := $(BUILD)/lockhubd
LOCKHUBCTL := $(BUILD)/lockhubctl
SIM       := $(if $(SIM_SRCS),$(BUILD)/lockhub-sim)
TOOLS     := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
REPLAY_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/replay-%,$(FUZZ_SRCS))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))

# Objects are never intermediate: keep them, so nothing is rebuilt twice.
.SECONDARY:

.PHONY: all deps deps-check demo check unit unit-run fuzz-replay integration fuzz install uninstall clean \
	format check-format bench soak

all: $(LOCKHUBD) $(LOCKHUBCTL) $(SIM) $(TOOLS)

deps:
	@scripts/install-deps.sh build
deps-check:
	@scripts/install-deps.sh check

demo:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory all
	@LOCKHUB_BUILD=$(abspath $(BUILD)) scripts/demo.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# SQL migrations are compiled into the binary: the daemon never reads sql/ at run time.
$(BUILD)/gen/sql-migrations.c: $(sort $(wildcard sql/*.sql)) scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	$(Q)scripts/embed-sql.sh $(sort $(wildcard sql/*.sql)) > $@.tmp && mv $@.tmp $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(AR) rcs $@ $^

$(LOCKHUBD): $(BUILD)/obj/src/main.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(LOCKHUBCTL): $(call obj,$(CTL_SRCS)) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/lockhub-sim: $(call obj,$(SIM_SRCS)) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Small test programs driven by the integration tests.
$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CMOCKA_LIBS)

# Fuzz targets replayed over their corpora by a plain driver (no clang needed).
$(BUILD)/fuzz/replay-%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

unit: $(UNIT_BINS)

unit-run: $(UNIT_BINS) all
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; LOCKHUB_BUILD=$(BUILD) $$t; done

fuzz-replay: $(REPLAY_BINS)
	@set -e; for t in $(REPLAY_BINS); do \
		n=$${t##*/replay-}; $$t tests/fuzz/corpus/$$n; done

integration: all
	@LOCKHUB_BUILD=$(BUILD) tests/integration/run.sh

check: deps-check
	$(MAKE) --no-print-directory all unit-run fuzz-replay
	$(MAKE) --no-print-directory SAN=1 all unit-run fuzz-replay
	@tests/check-man.sh
	$(MAKE) --no-print-directory integration

# Benchmarks (tests/bench/run.sh, BENCHMARKS.md): an optimised build of its own, then every
# scenario; prints a table and, last, one line of JSON (also in build/bench/results.json).
bench:
	$(MAKE) --no-print-directory BUILD=build/bench CFLAGS="-O2 -DNDEBUG" all
	@LOCKHUB_BUILD=$(abspath build/bench) tests/bench/run.sh

# libFuzzer builds (clang); FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -DLOCKHUB_VERSION='"$(VERSION)"' -DLOCKHUB_SYSCONFDIR='"$(SYSCONFDIR)"' \
	-DLOCKHUB_DATADIR='"$(DATADIR)"' -Iinclude -Ibuild/gen -g -O1 $(PKG_CFLAGS) \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
build/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) build/gen/sql-migrations.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRCS) build/gen/sql-migrations.c $(PKG_LIBS) -lm

fuzz: deps-check build/gen/sql-migrations.c $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$${f##*/}; mkdir -p build/fuzz/corpus-$$n tests/fuzz/crashes; \
		echo "== $$n ($(FUZZ_SECONDS)s)"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=tests/fuzz/crashes/$$n- \
			build/fuzz/corpus-$$n tests/fuzz/corpus/$$n 2>&1 | tail -n 3; done

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DBUSPOLICYDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(CATALOGDIR) $(DESTDIR)$(DATADIR)/sql \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SYSCONFDIR)/lockhub
	install -m 0755 $(LOCKHUBD) $(DESTDIR)$(SBINDIR)/lockhubd
	install -m 0755 $(LOCKHUBCTL) $(DESTDIR)$(BINDIR)/lockhubctl
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/lockhubd.service.in > $(DESTDIR)$(UNITDIR)/lockhubd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/lockhubd.service
	install -m 0644 systemd/org.lockhub.conf $(DESTDIR)$(DBUSPOLICYDIR)/org.lockhub.conf
	install -m 0644 systemd/lockhub.sysusers $(DESTDIR)$(SYSUSERSDIR)/lockhub.conf
	@if [ -f systemd/lockhub.catalog ]; then \
		install -m 0644 systemd/lockhub.catalog $(DESTDIR)$(CATALOGDIR)/lockhub.catalog; fi
	install -m 0644 sql/*.sql $(DESTDIR)$(DATADIR)/sql/
	install -m 0644 conf/known-firmware.json $(DESTDIR)$(DATADIR)/known-firmware.json
	install -m 0644 systemd/lockhubd-unix-broker.conf $(DESTDIR)$(DATADIR)/lockhubd-unix-broker.conf
	install -m 0644 man/lockhubctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/lockhub.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/lockhubd.8 $(DESTDIR)$(MANDIR)/man8/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/lockhub/lockhub.conf ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/lockhub/lockhub.conf"; \
	else install -m 0644 conf/lockhub.conf $(DESTDIR)$(SYSCONFDIR)/lockhub/lockhub.conf; fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/lockhubd $(DESTDIR)$(BINDIR)/lockhubctl \
		$(DESTDIR)$(UNITDIR)/lockhubd.service $(DESTDIR)$(DBUSPOLICYDIR)/org.lockhub.conf \
		$(DESTDIR)$(SYSUSERSDIR)/lockhub.conf $(DESTDIR)$(CATALOGDIR)/lockhub.catalog \
		$(DESTDIR)$(MANDIR)/man1/lockhubctl.1 $(DESTDIR)$(MANDIR)/man5/lockhub.conf.5 \
		$(DESTDIR)$(MANDIR)/man8/lockhubd.8
	rm -rf $(DESTDIR)$(DATADIR)
	@echo "left in place: $(SYSCONFDIR)/lockhub/ (configuration) and /var/lib/lockhub/ (state)"

# A simulated month of use with random faults against one lockhubd (tests/soak/soak.sh;
# SOAK_DAYS, SOAK_DAY_SEC, SOAK_FAULT_PERCENT, SOAK_SEED): about 15-20 minutes.
soak: all
	@LOCKHUB_TOP=$(CURDIR) LOCKHUB_BUILD=$(CURDIR)/$(BUILD) sh tests/soak/soak.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
check-format:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
