# vfio-broker: one non-recursive GNU Makefile.
#
#   make                 build everything into $(BUILD)
#   make check           install deps, build, run every test tier this machine can run
#   make demo            install deps, build, boot a real kernel and walk through a lease
#   make install         DESTDIR=... PREFIX=...
#   make kmod KDIR=...   build kmod/vfio_quarantine.ko against a kernel's headers
#
# Variables: BUILD (build dir), WERROR=1 (warnings are errors; CI sets it),
# VM=0 (skip the QEMU tier, says so loudly), VM_KERNELS (which guest kernels).

BUILD      ?= build
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DESTDIR    ?=
VERSION    := 0.1.0
SOVERSION  := 0

CC         ?= cc
AR         ?= ar
PKG_CONFIG ?= pkg-config

PKGS       := libsystemd json-c libseccomp libcap libnl-3.0 libnl-genl-3.0
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
JSON_LIBS  := $(shell $(PKG_CONFIG) --libs json-c 2>/dev/null)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)

CFLAGS     ?= -O2 -g
WARNINGS   := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wvla \
              -Wformat=2 -Wpointer-arith -Wundef -Wno-unused-parameter \
              -Wno-missing-field-initializers
ifeq ($(WERROR),1)
WARNINGS   += -Werror
endif
# SANITIZE=1: ASan + UBSan for the whole user-space build.
ifeq ($(SANITIZE),1)
CFLAGS     += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS    += -fsanitize=address,undefined
endif
ALL_CFLAGS := -std=gnu11 -fPIC -D_GNU_SOURCE $(WARNINGS) $(CFLAGS) -I. -Ikmod/uapi \
              -DVB_VERSION=\"$(VERSION)\" $(PKG_CFLAGS)

OBJ := $(BUILD)/obj

COMMON_SRC   := $(wildcard common/*.c)
PROTOCOL_SRC := $(wildcard protocol/*.c)
POLICY_SRC   := $(wildcard policy/*.c)
BROKER_SRC   := $(wildcard broker/*.c)
LIB_SRC      := $(wildcard client/lib*.c)
VFIOCTL_SRC  := $(wildcard client/vfioctl*.c)
TESTLIB_SRC  := $(wildcard tests/lib/*.c)
UNIT_SRC     := $(wildcard tests/unit/test_*.c)
INTEG_SRC    := $(wildcard tests/integration/*.c)

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

COMMON_A   := $(BUILD)/libvbcommon.a
PROTOCOL_A := $(BUILD)/libvbprotocol.a
POLICY_A   := $(BUILD)/libvbpolicy.a
TESTLIB_A  := $(BUILD)/libvbtest.a
LIB_SO     := $(BUILD)/libvfiobroker.so.$(SOVERSION)
LIB_A      := $(BUILD)/libvfiobroker.a
BROKERD    := $(BUILD)/vfio-brokerd
VFIOCTL    := $(BUILD)/vfioctl
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
INTEG_BIN  := $(BUILD)/tests/integration

.PHONY: all check check-unit check-integration check-vm demo deps install kmod \
        bench fuzz format clean tests
.DEFAULT_GOAL := all

all: $(BROKERD) $(VFIOCTL) $(LIB_SO) $(LIB_A) $(BUILD)/vfiobroker.pc

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

# common/ is the leaf every layer may use; an empty archive is fine.
$(COMMON_A): $(call objs,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
$(PROTOCOL_A): $(call objs,$(PROTOCOL_SRC))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
$(POLICY_A): $(call objs,$(POLICY_SRC))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
$(TESTLIB_A): $(call objs,$(TESTLIB_SRC))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BROKERD): $(call objs,$(BROKER_SRC)) $(POLICY_A) $(PROTOCOL_A) $(COMMON_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The client library carries its own copy of the protocol code (static archive
# linked in); only the symbols in client/libvfiobroker.sym are exported.
$(LIB_SO): $(call objs,$(LIB_SRC)) $(PROTOCOL_A) $(COMMON_A) client/libvfiobroker.sym
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libvfiobroker.so.$(SOVERSION) \
		-Wl,--version-script=client/libvfiobroker.sym -o $@ \
		$(call objs,$(LIB_SRC)) $(PROTOCOL_A) $(COMMON_A) $(JSON_LIBS)
	ln -sf libvfiobroker.so.$(SOVERSION) $(BUILD)/libvfiobroker.so
$(LIB_A): $(call objs,$(LIB_SRC)) $(call objs,$(PROTOCOL_SRC)) $(call objs,$(COMMON_SRC))
	$(AR) rcs $@ $^

$(VFIOCTL): $(call objs,$(VFIOCTL_SRC)) $(LIB_A) $(POLICY_A) $(COMMON_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(JSON_LIBS)

# libvfiobroker-preload.so, the LD_PRELOAD shim for VMMs that open /dev/vfio/N
# themselves (client/preload.c, docs/qemu.md): its own copy of the library,
# exporting only the open() family; --wrap=socket puts the library's connection
# at a high fd. `vfioctl run` looks for it beside itself, then in $(LIBDIR).
PRELOAD_SO := $(BUILD)/libvfiobroker-preload.so
all: $(PRELOAD_SO)
$(PRELOAD_SO): $(OBJ)/client/preload.o $(call objs,$(LIB_SRC)) $(PROTOCOL_A) $(COMMON_A) \
		client/preload.sym
	$(CC) $(LDFLAGS) -shared -pthread -Wl,--wrap=socket \
		-Wl,--version-script=client/preload.sym -o $@ $(filter %.o %.a,$^) $(JSON_LIBS)
$(OBJ)/client/vfioctl_lease.o: ALL_CFLAGS += \
	-DVB_PRELOAD_PATH=\"$(LIBDIR)/libvfiobroker-preload.so\"
install: install-preload
install-preload: all
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0755 $(PRELOAD_SO) $(DESTDIR)$(LIBDIR)/libvfiobroker-preload.so
.PHONY: install-preload

$(BUILD)/vfiobroker.pc: client/vfiobroker.pc.in Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

# ---- tests ---------------------------------------------------------------

$(BUILD)/tests/%: tests/unit/%.c $(TESTLIB_A) $(POLICY_A) $(PROTOCOL_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS)

# Unit tests of broker modules (test_broker_*.c) link the broker's objects,
# all but main.o, so that a module is tested as the daemon runs it.
BROKER_LIB_OBJ := $(filter-out $(OBJ)/broker/main.o,$(call objs,$(BROKER_SRC)))
$(BUILD)/tests/test_broker_%: tests/unit/test_broker_%.c $(BROKER_LIB_OBJ) $(TESTLIB_A) \
		$(POLICY_A) $(PROTOCOL_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS)

$(INTEG_BIN): $(call objs,$(INTEG_SRC)) $(TESTLIB_A) $(LIB_A) $(PROTOCOL_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS)
$(call objs,$(INTEG_SRC)): ALL_CFLAGS += $(CHECK_CFLAGS)

tests: all $(UNIT_BIN) $(INTEG_BIN)

deps:
	@bash scripts/deps.sh

check: deps
	@$(MAKE) --no-print-directory tests
	@bash tests/check.sh $(BUILD)

check-unit: $(UNIT_BIN)
	@bash tests/check.sh $(BUILD) unit

check-integration: all $(INTEG_BIN)
	@bash tests/check.sh $(BUILD) integration

check-vm: all
	@bash tests/check.sh $(BUILD) vm kmod

demo: deps
	@$(MAKE) --no-print-directory all
	@bash tests/vm/demo.sh $(BUILD)

# Benchmark: never part of check's verdicts (timings are reported, not asserted). Needs root.
#   make bench                 full run, table + $(BUILD)/bench/results.json
#   make bench BENCH_SMOKE=1   every scenario with tiny counts (< 60 s); check runs this
#   make bench CALLGRIND=1     adds instruction counts per op and the broker's hot functions
bench: all $(TESTLIB_A)
	@BENCH_SMOKE="$(BENCH_SMOKE)" CALLGRIND="$(CALLGRIND)" CC="$(CC)" CFLAGS="$(CFLAGS)" \
		WERROR="$(WERROR)" bash tests/bench/run.sh $(BUILD)

# libFuzzer harnesses (clang) for the protocol decoder and the policy parser.
FUZZ_SECONDS ?= 60
fuzz:
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS)

kmod:
	$(MAKE) -C $(or $(KDIR),/lib/modules/$(shell uname -r)/build) M=$(CURDIR)/kmod modules

format:
	clang-format -i $$(git ls-files '*.c' '*.h' | grep -v '^kmod/')

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(SYSCONFDIR)/vfio-broker/policy.d \
		$(DESTDIR)$(PREFIX)/share/doc/vfio-broker/examples
	install -m 0755 $(BROKERD) $(DESTDIR)$(SBINDIR)/vfio-brokerd
	install -m 0755 $(VFIOCTL) $(DESTDIR)$(BINDIR)/vfioctl
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/libvfiobroker.so.$(SOVERSION)
	ln -sf libvfiobroker.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libvfiobroker.so
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libvfiobroker.a
	install -m 0644 client/vfiobroker.h $(DESTDIR)$(INCLUDEDIR)/vfiobroker.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' client/vfiobroker.pc.in \
		> $(DESTDIR)$(LIBDIR)/pkgconfig/vfiobroker.pc
	sed 's|@SBINDIR@|$(SBINDIR)|' broker/systemd/vfio-brokerd.service.in \
		> $(DESTDIR)$(UNITDIR)/vfio-brokerd.service
	install -m 0644 broker/systemd/vfio-brokerd.socket $(DESTDIR)$(UNITDIR)/
	install -m 0644 man/vfio-brokerd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/vfioctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 policy/examples/*.json $(DESTDIR)$(PREFIX)/share/doc/vfio-broker/examples/

clean:
	rm -rf $(BUILD)
