# vfio-broker: one non-recursive GNU Makefile.
#
#   make                 build everything into $(BUILD)
#   make check           install deps, build, run every test tier this machine can run
#   make demo            install deps, build, boot a real kernel and walk through a lease
#   make install         DESTDIR=... PREFIX=... (after `make` with the same paths; never builds)
#   make kmod KDIR=...   build kmod/vfio_quarantine.ko against a kernel's headers
#   make check-format    list the C files clang-format would change (make format fixes them)
#
# Variables: BUILD (build dir), WERROR=1 (warnings are errors; CI sets it),
# VM=0 (skip the QEMU tier, says so loudly), VM_KERNELS (which guest kernels).
# Packagers: CPPFLAGS, CFLAGS and LDFLAGS are honoured (e.g. those of dpkg-buildflags),
# and LIBDIR may be a multiarch directory: make LIBDIR=$(PREFIX)/lib/x86_64-linux-gnu.

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
OBJCOPY    ?= objcopy
PKG_CONFIG ?= pkg-config

CLANG_FORMAT ?= clang-format-14

# pkg-config modules, each with the Debian package that provides it.
PKGS       := libsystemd json-c libseccomp libcap libnl-3.0 libnl-genl-3.0
PKG_DEBS   := libsystemd:libsystemd-dev json-c:libjson-c-dev libseccomp:libseccomp-dev \
              libcap:libcap-dev libnl-3.0:libnl-3-dev libnl-genl-3.0:libnl-genl-3-dev \
              check:check
# Asked only once every module is there; the pkgs-% targets below name a missing one.
ifeq ($(shell $(PKG_CONFIG) --exists $(PKGS) && echo yes),yes)
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS))
JSON_LIBS  := $(shell $(PKG_CONFIG) --libs json-c)
endif
ifeq ($(shell $(PKG_CONFIG) --exists check && echo yes),yes)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check)
CHECK_LIBS   := $(shell $(PKG_CONFIG) --libs check)
endif

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
# The packager's CPPFLAGS (e.g. Debian's -D_FORTIFY_SOURCE=2) after our own -I and -D.
ALL_CFLAGS := -std=gnu11 -fPIC -D_GNU_SOURCE -I. -Ikmod/uapi -DVB_VERSION=\"$(VERSION)\" \
              $(CPPFLAGS) $(WARNINGS) $(CFLAGS) $(PKG_CFLAGS)

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
LIB_PC     := $(BUILD)/vfiobroker.pc
UNIT_FILE  := $(BUILD)/vfio-brokerd.service
BROKERD    := $(BUILD)/vfio-brokerd
VFIOCTL    := $(BUILD)/vfioctl
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
INTEG_BIN  := $(BUILD)/tests/integration

.PHONY: all check check-format check-unit check-integration check-vm demo deps install \
        kmod bench fuzz format clean tests pkgs-build pkgs-check FORCE
.DEFAULT_GOAL := all

all: $(BROKERD) $(VFIOCTL) $(LIB_SO) $(LIB_A) $(LIB_PC) $(UNIT_FILE)

# $(call pkgs_require,MODULES): stop, naming the first pkg-config module that is
# missing and the Debian package to install. Expanded only when a recipe runs, so
# that clean, format and deps work without the libraries.
pkg_deb = $(patsubst $(1):%,%,$(filter $(1):%,$(PKG_DEBS)))
pkgs_require = $(foreach p,$(1),$(if $(shell $(PKG_CONFIG) --exists $(p) && echo yes),,\
	$(error pkg-config module '$(p)' not found: install the Debian package \
	$(call pkg_deb,$(p)) (scripts/deps.sh installs every dependency))))
pkgs-build:
	@: $(call pkgs_require,$(PKGS))
pkgs-check:
	@: $(call pkgs_require,check)

$(OBJ)/%.o: %.c | pkgs-build
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

# Archives are made afresh, so that an object whose source went away leaves with it.
# common/ is the leaf every layer may use; an empty archive is fine.
$(COMMON_A) $(PROTOCOL_A) $(POLICY_A) $(TESTLIB_A):
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
$(COMMON_A): $(call objs,$(COMMON_SRC))
$(PROTOCOL_A): $(call objs,$(PROTOCOL_SRC))
$(POLICY_A): $(call objs,$(POLICY_SRC))
$(TESTLIB_A): $(call objs,$(TESTLIB_SRC))

$(BROKERD): $(call objs,$(BROKER_SRC)) $(POLICY_A) $(PROTOCOL_A) $(COMMON_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The client library carries its own copy of the protocol code (static archive
# linked in); only the symbols in client/libvfiobroker.sym are exported.
$(LIB_SO): $(call objs,$(LIB_SRC)) $(PROTOCOL_A) $(COMMON_A) client/libvfiobroker.sym
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libvfiobroker.so.$(SOVERSION) \
		-Wl,--version-script=client/libvfiobroker.sym -o $@ \
		$(call objs,$(LIB_SRC)) $(PROTOCOL_A) $(COMMON_A) $(JSON_LIBS)
	ln -sf libvfiobroker.so.$(SOVERSION) $(BUILD)/libvfiobroker.so

# The static library exports what the shared one does: its objects and the protocol
# and common code they use are linked into one relocatable object, in which every
# global but the public vfiobroker_* API is made local. A program linking it can
# define its own vb_* or list_* without a clash, and cannot call ours.
LIB_A_OBJ := $(OBJ)/client/libvfiobroker-static.o
$(LIB_A_OBJ): $(call objs,$(LIB_SRC)) $(call objs,$(PROTOCOL_SRC)) $(call objs,$(COMMON_SRC))
	$(CC) -r -nostdlib -o $@.tmp $^
	$(OBJCOPY) --wildcard --keep-global-symbol='vfiobroker_*' $@.tmp $@
	rm -f $@.tmp
$(LIB_A): $(LIB_A_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

$(VFIOCTL): $(call objs,$(VFIOCTL_SRC)) $(LIB_A) $(POLICY_A) $(PROTOCOL_A) $(COMMON_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(JSON_LIBS)

# libvfiobroker-preload.so, the LD_PRELOAD shim for VMMs that open /dev/vfio/N
# themselves (client/preload.c, docs/qemu.md): its own copy of the library,
# exporting only the open() family; --wrap=socket puts the library's connection
# at a high fd. `vfioctl run` looks for it beside itself, then in $(LIBDIR)/vfio-broker
# (a private directory: a plugin has no soname).
PRELOAD_SO := $(BUILD)/libvfiobroker-preload.so
all: $(PRELOAD_SO)
$(PRELOAD_SO): $(OBJ)/client/preload.o $(call objs,$(LIB_SRC)) $(PROTOCOL_A) $(COMMON_A) \
		client/preload.sym
	$(CC) $(LDFLAGS) -shared -pthread -Wl,--wrap=socket \
		-Wl,--version-script=client/preload.sym -o $@ $(filter %.o %.a,$^) $(JSON_LIBS)
# The installed shim's path is baked into vfioctl: rebuilt when LIBDIR changes.
$(OBJ)/client/vfioctl_lease.o: ALL_CFLAGS += \
	-DVB_PRELOAD_PATH=\"$(LIBDIR)/vfio-broker/libvfiobroker-preload.so\"
$(OBJ)/client/vfioctl_lease.o: $(BUILD)/install-paths

# The install paths baked into built files. The file changes only when a path does,
# so that the .pc file and the unit are rebuilt then, and `make install` can refuse
# paths the build was not made for.
INSTALL_PATHS := PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR) SBINDIR=$(SBINDIR)
$(BUILD)/install-paths: FORCE
	@mkdir -p $(dir $@)
	@echo '$(INSTALL_PATHS)' | cmp -s - $@ || echo '$(INSTALL_PATHS)' > $@

$(LIB_PC): client/vfiobroker.pc.in $(BUILD)/install-paths
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@
$(UNIT_FILE): broker/systemd/vfio-brokerd.service.in $(BUILD)/install-paths
	sed 's|@SBINDIR@|$(SBINDIR)|' $< > $@

# ---- tests ---------------------------------------------------------------

# A unit test compiles and links in one step; UNIT_DEPS records the headers and
# sources it includes (test_libvfiobroker includes client/libvfiobroker.c), so
# that a change to any of them rebuilds it.
UNIT_DEPS = -MMD -MP -MT $@ -MF $(OBJ)/tests/unit/$(@F).d
# What a unit test links: its source, objects and archives, never the headers and
# included sources its dependency file adds to $^.
UNIT_LINK = $< $(filter %.o %.a,$^)
$(BUILD)/tests/%: tests/unit/%.c $(TESTLIB_A) $(POLICY_A) $(PROTOCOL_A) $(COMMON_A) | pkgs-check
	@mkdir -p $(dir $@) $(OBJ)/tests/unit
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) $(UNIT_DEPS) $(LDFLAGS) -o $@ $(UNIT_LINK) $(PKG_LIBS) \
		$(CHECK_LIBS)

# Unit tests of broker modules (test_broker_*.c) link the broker's objects,
# all but main.o, so that a module is tested as the daemon runs it.
BROKER_LIB_OBJ := $(filter-out $(OBJ)/broker/main.o,$(call objs,$(BROKER_SRC)))
$(BUILD)/tests/test_broker_%: tests/unit/test_broker_%.c $(BROKER_LIB_OBJ) $(TESTLIB_A) \
		$(POLICY_A) $(PROTOCOL_A) $(COMMON_A) | pkgs-check
	@mkdir -p $(dir $@) $(OBJ)/tests/unit
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) $(UNIT_DEPS) $(LDFLAGS) -o $@ $(UNIT_LINK) $(PKG_LIBS) \
		$(CHECK_LIBS)

# The integration suite uses the library as programs get it: the public API of the
# static archive, nothing internal.
$(INTEG_BIN): $(call objs,$(INTEG_SRC)) $(TESTLIB_A) $(LIB_A) $(PROTOCOL_A) $(COMMON_A) \
		| pkgs-check
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS)
$(call objs,$(INTEG_SRC)): ALL_CFLAGS += $(CHECK_CFLAGS)
$(call objs,$(INTEG_SRC)): | pkgs-check

tests: all $(UNIT_BIN) $(INTEG_BIN)

deps:
	@bash scripts/deps.sh

# check.sh's default tiers: format (check-format below), unit, install, integration, ...
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

# The C files clang-format (the version deps.sh installs) keeps formatted: kmod/ follows
# the kernel's style instead.
FORMAT_FILES = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null \
	| grep -v '^kmod/')

format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

# Fails naming every file that `make format` would change.
check-format:
	@command -v $(CLANG_FORMAT) >/dev/null || \
		{ echo "check-format: $(CLANG_FORMAT) not found (scripts/deps.sh installs it)" >&2; exit 1; }
	@bad=$$($(CLANG_FORMAT) --dry-run $(FORMAT_FILES) 2>&1 | \
		sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: warning: code should be clang-formatted.*/\1/p' | \
		sort -u); \
	if [ -n "$$bad" ]; then \
		echo "check-format: not formatted with $(CLANG_FORMAT) (make format fixes them):" >&2; \
		printf '  %s\n' $$bad >&2; \
		exit 1; \
	fi; \
	echo "check-format: $(words $(FORMAT_FILES)) files formatted"

# Installs what `make` built, and builds nothing: run as root, it must not compile.
# The paths must be those the build was made for (they are in the .pc file and the unit).
INSTALL_BUILT := $(BROKERD) $(VFIOCTL) $(LIB_SO) $(PRELOAD_SO) $(LIB_A) $(LIB_PC) $(UNIT_FILE)
install:
	@for f in $(INSTALL_BUILT); do \
		[ -e "$$f" ] || { echo "make install: $$f is not built: run 'make' first" \
			"(as yourself; install never builds)" >&2; exit 1; }; \
	done
	@[ "$$(cat $(BUILD)/install-paths)" = '$(INSTALL_PATHS)' ] || { \
		echo "make install: $(BUILD) was built for $$(cat $(BUILD)/install-paths);" \
			"run 'make $(INSTALL_PATHS)' before installing there" >&2; exit 1; }
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(SYSCONFDIR)/vfio-broker/policy.d \
		$(DESTDIR)$(PREFIX)/share/doc/vfio-broker/examples
	install -m 0755 $(BROKERD) $(DESTDIR)$(SBINDIR)/vfio-brokerd
	install -m 0755 $(VFIOCTL) $(DESTDIR)$(BINDIR)/vfioctl
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/libvfiobroker.so.$(SOVERSION)
	install -d $(DESTDIR)$(LIBDIR)/vfio-broker
	install -m 0755 $(PRELOAD_SO) $(DESTDIR)$(LIBDIR)/vfio-broker/libvfiobroker-preload.so
	ln -sf libvfiobroker.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libvfiobroker.so
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libvfiobroker.a
	install -m 0644 client/vfiobroker.h $(DESTDIR)$(INCLUDEDIR)/vfiobroker.h
	install -m 0644 $(LIB_PC) $(DESTDIR)$(LIBDIR)/pkgconfig/vfiobroker.pc
	install -m 0644 $(UNIT_FILE) broker/systemd/vfio-brokerd.socket $(DESTDIR)$(UNITDIR)/
	install -m 0644 man/vfio-brokerd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/vfioctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 policy/examples/*.json $(DESTDIR)$(PREFIX)/share/doc/vfio-broker/examples/

clean:
	rm -rf $(BUILD)
