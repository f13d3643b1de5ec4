# Crosswalk — plain Makefile.
#
#   make            build bin/crosswalk and lib/crosswalk/plugins/*.so
#   make run        install missing Debian packages, build, serve on 127.0.0.1:8080
#   make test       install missing Debian packages, build, run the whole suite
#   make SANITIZE=address,undefined test   the same under ASan+UBSan (own build dir)
#   make SANITIZE=thread test              the same under TSan
#   make check-abi  prove plugins export nothing but cw_plugin_entry
#   make fuzz       build libFuzzer harnesses (clang) into build/fuzz/
#   make model      regenerate core/fhir/gen/model_data.c from ../shared/fhir-r4/package
#   make search-params  regenerate core/fhir/gen/search_params_data.c from the same package
#   make profiles   regenerate the conformance resources in profiles/
#   make codes      regenerate the code packs profiles/codes/*.tsv from ../shared/codes
#   make install PREFIX=/usr/local DESTDIR=
#   make clean

.DELETE_ON_ERROR:
.SUFFIXES:
SHELL := /bin/bash

VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
SHARED ?= ../shared
SANITIZE ?=

comma := ,
ifeq ($(SANITIZE),)
  VARIANT := default
  OUT := .
  OPT := -O2 -D_FORTIFY_SOURCE=2
else
  VARIANT := san-$(subst $(comma),-,$(SANITIZE))
  OUT := build/$(VARIANT)
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
endif

OBJ      := build/$(VARIANT)/obj
BINDIR   := $(OUT)/bin
PLUGDIR  := $(OUT)/lib/crosswalk/plugins
TESTDIR  := build/$(VARIANT)/tests
TPLUGDIR := build/$(VARIANT)/test-plugins
LIBCORE  := build/$(VARIANT)/libcwcore.a

# Every library through pkg-config. Evaluated once per make invocation; the
# deps step runs before the sub-make that compiles, so a fresh machine works.
PKGS      := libmicrohttpd libcjson libcurl libxml-2.0 sqlite3 openssl
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_CFLAGS = $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   = $(shell pkg-config --libs cmocka 2>/dev/null)
CJSON_CFLAGS  = $(shell pkg-config --cflags libcjson 2>/dev/null)
CJSON_LIBS    = $(shell pkg-config --libs libcjson 2>/dev/null)
CURL_CFLAGS   = $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS     = $(shell pkg-config --libs libcurl 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla -Wpointer-arith -Wundef -Wold-style-definition \
        -Wimplicit-fallthrough -Wnull-dereference
HARDEN := -fstack-protector-strong -fstack-clash-protection
CFLAGS ?= -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(HARDEN) $(CFLAGS) -MMD -MP \
             -Icore -Icore/include -DCW_VERSION='"$(VERSION)"'
EXE_LDFLAGS = -pie -Wl,-z,relro,-z,now $(LDFLAGS)

# core/ is one folder per subsystem (each has a README); main.c stays apart.
CORE_SRC := $(sort $(filter-out core/main.c,$(wildcard core/*.c core/*/*.c core/*/*/*.c)))
CORE_OBJ := $(CORE_SRC:%.c=$(OBJ)/%.o)
MAIN_OBJ := $(OBJ)/core/main.o

# plugins/common/ is no plugin: it is plugkit, the helpers the plugins share,
# a static library linked into each plugin (hidden symbols, not part of the ABI).
PLUGINS      := $(filter-out common,$(sort $(notdir $(patsubst %/,%,$(dir $(wildcard plugins/*/*.c))))))
PLUGIN_SOS   := $(PLUGINS:%=$(PLUGDIR)/%.so)
TPLUGINS     := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard tests/plugins/*/*.c)))))
TPLUGIN_SOS  := $(TPLUGINS:%=$(TPLUGDIR)/%.so)
PLUGKIT_SRC  := $(sort $(wildcard plugins/common/*.c))
PLUGKIT      := build/$(VARIANT)/libcwplugkit.a
PLUGIN_CFLAGS = -fPIC -fvisibility=hidden
PLUGIN_LDFLAGS = -shared -Wl,-z,defs -Wl,-z,relro,-z,now -Wl,--version-script=core/include/crosswalk/plugin.map

UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(TESTDIR)/unit/%)
E2E_SRC   := $(sort $(wildcard tests/e2e/test_*.c))
E2E_LIB   := $(filter-out $(E2E_SRC),$(wildcard tests/e2e/*.c))
E2E_BINS  := $(E2E_SRC:tests/e2e/%.c=$(TESTDIR)/e2e/%)
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES:= $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
REPLAY_BINS := $(FUZZ_NAMES:%=$(TESTDIR)/fuzz/replay_%)

.PHONY: all deps run test check-abi fuzz model search-params profiles codes install uninstall clean bench tests-build

all: $(BINDIR)/crosswalk $(PLUGIN_SOS)

deps:
	@tools/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	exec $(BINDIR)/crosswalk serve -c conf/crosswalk.json

test: deps
	@$(MAKE) --no-print-directory tests-build
	@CW_BIN=$(BINDIR)/crosswalk CW_PLUGIN_DIR=$(PLUGDIR) CW_TEST_PLUGIN_DIR=$(TPLUGDIR) \
	  CW_SHARED=$(SHARED) CW_SANITIZE=$(SANITIZE) \
	  tests/run.sh $(UNIT_BINS) $(E2E_BINS) $(REPLAY_BINS)

tests-build: all $(TPLUGIN_SOS) $(UNIT_BINS) $(E2E_BINS) $(REPLAY_BINS)

# --- core ---------------------------------------------------------------
$(OBJ)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) -fPIE -c $< -o $@

$(LIBCORE): $(CORE_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

$(BINDIR)/crosswalk: $(MAIN_OBJ) $(LIBCORE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(EXE_LDFLAGS) $^ $(PKG_LIBS) -ldl -lpthread -lm -o $@

# --- plugins: one folder each, linked alone, exporting one symbol ---------
# Each links plugkit ($(PLUGKIT)); the linker takes only what it uses.
# (No "%" inside the prerequisite functions: make substitutes the stem there.)
$(OBJ)/plugin/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CJSON_CFLAGS) $(PLUGIN_CFLAGS) -c $< -o $@

$(PLUGKIT): $(PLUGKIT_SRC:%.c=$(OBJ)/plugin/%.o)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

.SECONDEXPANSION:
$(PLUGDIR)/%.so: $$(addprefix $(OBJ)/plugin/,$$(addsuffix .o,$$(basename $$(wildcard plugins/$$*/*.c)))) $(PLUGKIT) core/include/crosswalk/plugin.map
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PLUGIN_LDFLAGS) $(filter %.o,$^) $(PLUGKIT) $(CJSON_LIBS) -o $@
	@chmod 0755 $@ && chmod go-w $(@D) $(OUT)/lib/crosswalk

$(TPLUGDIR)/%.so: $$(addprefix $(OBJ)/plugin/,$$(addsuffix .o,$$(basename $$(wildcard tests/plugins/$$*/*.c)))) $(PLUGKIT) core/include/crosswalk/plugin.map
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PLUGIN_LDFLAGS) $(filter %.o,$^) $(PLUGKIT) $(CJSON_LIBS) -o $@
	@chmod 0755 $@ && chmod go-w $(@D)

# --- tests ----------------------------------------------------------------
$(OBJ)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) $(CMOCKA_CFLAGS) -Itests -c $< -o $@

# Unit tests, end-to-end tests and fuzz harnesses may include plugin sources
# (or test plugkit itself): plugkit is linked after the core.
$(TESTDIR)/unit/%: $(OBJ)/tests/unit/%.o $(LIBCORE) $(PLUGKIT)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ $(PKG_LIBS) $(CMOCKA_LIBS) -ldl -lpthread -lm -o $@

$(TESTDIR)/e2e/%: $(OBJ)/tests/e2e/%.o $(E2E_LIB:tests/%.c=$(OBJ)/tests/%.o) $(LIBCORE) $(PLUGKIT)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ $(PKG_LIBS) $(CURL_LIBS) $(CMOCKA_LIBS) -ldl -lpthread -lm -o $@

$(TESTDIR)/fuzz/replay_%: $(OBJ)/tests/fuzz/fuzz_%.o $(OBJ)/tests/fuzz/replay_main.o $(LIBCORE) $(PLUGKIT)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ $(PKG_LIBS) -ldl -lpthread -lm -o $@

# --- checks and tools -------------------------------------------------------
check-abi: $(PLUGIN_SOS) $(TPLUGIN_SOS)
	@tools/check-abi.sh $^

FUZZ_CC ?= clang
fuzz: deps
	@mkdir -p build/fuzz
	@for n in $(FUZZ_NAMES); do \
	  echo "  FUZZ build/fuzz/fuzz_$$n"; \
	  $(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Icore -Icore/include \
	    $(PKG_CFLAGS) -DCW_VERSION='"$(VERSION)"' tests/fuzz/fuzz_$$n.c $(CORE_SRC) $(PLUGKIT_SRC) $(PKG_LIBS) -ldl -lpthread -lm \
	    -o build/fuzz/fuzz_$$n || exit 1; \
	done
	@echo "run: build/fuzz/fuzz_NAME tests/fuzz/corpus/NAME"

model:
	python3 tools/gen_model.py $(SHARED)/fhir-r4/package core/fhir/gen/model_data.c

search-params:
	python3 tools/gen_search_params.py $(SHARED)/fhir-r4/package core/fhir/gen/search_params_data.c

profiles:
	python3 tools/gen_profiles.py profiles

codes:
	python3 tools/gen_codes.py $(SHARED)/codes profiles/codes

bench: deps
	@$(MAKE) --no-print-directory all
	@tools/bench.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/crosswalk/plugins \
	  $(DESTDIR)$(PREFIX)/etc/crosswalk $(DESTDIR)$(PREFIX)/share/crosswalk
	install -m 0755 $(BINDIR)/crosswalk $(DESTDIR)$(PREFIX)/bin/crosswalk
	$(if $(PLUGIN_SOS),install -m 0755 $(PLUGIN_SOS) $(DESTDIR)$(PREFIX)/lib/crosswalk/plugins/)
	sed -e 's|"lib/crosswalk/plugins"|"$(PREFIX)/lib/crosswalk/plugins"|' \
	    -e 's|"profiles"|"$(PREFIX)/share/crosswalk/profiles"|' \
	    -e 's|"var"|"/var/lib/crosswalk"|' conf/crosswalk.json > $(DESTDIR)$(PREFIX)/etc/crosswalk/crosswalk.json
	chmod 0644 $(DESTDIR)$(PREFIX)/etc/crosswalk/crosswalk.json
	cp -R profiles $(DESTDIR)$(PREFIX)/share/crosswalk/

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/crosswalk $(DESTDIR)$(PREFIX)/lib/crosswalk \
	  $(DESTDIR)$(PREFIX)/etc/crosswalk $(DESTDIR)$(PREFIX)/share/crosswalk

clean:
	rm -rf build bin lib

-include $(shell find build -name '*.d' 2>/dev/null)
