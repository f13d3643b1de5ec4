# Crosswalk — plain Makefile.
#
#   make            build bin/crosswalk, lib/crosswalk/crosswalk-gateway and lib/crosswalk/plugins/*.so
#   make run        install missing run packages, build, serve on 127.0.0.1:8080
#   make test       install missing test packages, build, run the whole suite
#                   (corpora from tests/fixtures/corpus, unpacked into build/corpus)
#   make SANITIZE=address,undefined test   the same under ASan+UBSan (own build dir)
#   make SANITIZE=thread test              the same under TSan
#   make check-abi  prove plugins export nothing but cw_plugin_entry
#   make check-format  no C file drifts further from .clang-format (tools/check-format.sh)
#   make mutate     mutation testing of the store, outbox and HTTP framing checks:
#                   each line of tests/mutations.txt put into a scratch copy, rebuilt,
#                   its tests run; prints killed/survived (MUTATE="store/ http/" selects)
#   make fuzz       build libFuzzer harnesses (clang) into build/fuzz/
#   make model      regenerate core/fhir/gen/model_data.c from SHARED/fhir-r4/package
#   make search-params  regenerate core/fhir/gen/search_params_data.c from the same package
#                   and the string-search folding table core/fhir/gen/fold_data.c
#   make invariants regenerate core/fhir/gen/invariants_data.c (R4 core invariants) from the same package
#   make compartment regenerate core/fhir/gen/compartment_data.c (the Patient compartment) from the same package
#   make valuesets  regenerate core/fhir/gen/valueset_data.c (core ValueSets bound required or extensible)
#                   from the same package and SHARED/fhir-r4/expansions
#   make profiles   regenerate the conformance resources in profiles/
#   make codes      regenerate the code packs profiles/codes/*.tsv from SHARED/codes
#                   (SHARED=build/corpus: the source lists the tests unpack)
#   make install PREFIX=/usr/local DESTDIR= [SYSCONFDIR=] [STATEDIR=] [WITH_ECHO=1]
#   make clean

.DELETE_ON_ERROR:
.SUFFIXES:
.SECONDARY:
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
TSHIMDIR := build/$(VARIANT)/test-shims
LIBCORE  := build/$(VARIANT)/libcwcore.a

# Every library through pkg-config. Evaluated once per make invocation; the
# deps step runs before the sub-make that compiles, so a fresh machine works.
PKGS      := libmicrohttpd gnutls libcjson libcurl libxml-2.0 sqlite3 openssl libpq
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_CFLAGS = $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   = $(shell pkg-config --libs cmocka 2>/dev/null)
CJSON_CFLAGS  = $(shell pkg-config --cflags libcjson 2>/dev/null)
CJSON_LIBS    = $(shell pkg-config --libs libcjson 2>/dev/null)
CURL_CFLAGS   = $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS     = $(shell pkg-config --libs libcurl 2>/dev/null)
# bin/crosswalk (core/main.c built with CW_FRONT) runs convert and version
# itself and executes the gateway binary for the other commands: it links
# only what the converter uses, so it starts without the server's libraries.
# libxml2 is not linked there: core/fhir/fhir_xml.c loads it on first use, by
# the SONAME of the libxml2 it is built against (XML_SONAME).
FRONT_LIBS    = $(shell pkg-config --libs libcjson 2>/dev/null)
XML_SONAME   := $(shell objdump -p "$$(pkg-config --variable=libdir libxml-2.0 2>/dev/null)/libxml2.so" 2>/dev/null | \
                  awk '$$1 == "SONAME" { print $$2 }')

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla -Wpointer-arith -Wundef -Wold-style-definition \
        -Wimplicit-fallthrough -Wnull-dereference
HARDEN := -fstack-protector-strong -fstack-clash-protection
CFLAGS ?= -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(HARDEN) $(CFLAGS) -MMD -MP \
             $(if $(XML_SONAME),-DCW_LIBXML2_SONAME='"$(XML_SONAME)"') \
             -Icore -Icore/include -DCW_VERSION='"$(VERSION)"'
EXE_LDFLAGS = -pie -Wl,-z,relro,-z,now $(LDFLAGS)

# core/ is one folder per subsystem (each has a README); main.c stays apart.
CORE_SRC := $(sort $(filter-out core/main.c,$(wildcard core/*.c core/*/*.c core/*/*/*.c)))
# The console's files (core/console/www/) are compiled in by assets.S.
CONSOLE_WWW := $(sort $(wildcard core/console/www/*))
CORE_OBJ := $(CORE_SRC:%.c=$(OBJ)/%.o) $(OBJ)/core/console/assets_data.o
MAIN_OBJ := $(OBJ)/core/main.o
FRONT_OBJ := $(OBJ)/core/main_front.o
GATEWAY  := $(OUT)/lib/crosswalk/crosswalk-gateway

# plugins/common/ is no plugin: it is plugkit, the helpers the plugins share,
# a static library linked into each plugin (hidden symbols, not part of the ABI).
PLUGINS      := $(filter-out common,$(sort $(notdir $(patsubst %/,%,$(dir $(wildcard plugins/*/*.c))))))
PLUGIN_SOS   := $(PLUGINS:%=$(PLUGDIR)/%.so)
TPLUGINS     := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard tests/plugins/*/*.c)))))
TPLUGIN_SOS  := $(TPLUGINS:%=$(TPLUGDIR)/%.so)
# tests/shims/NAME/: LD_PRELOAD libraries the e2e tests put under the gateway
TSHIMS       := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard tests/shims/*/*.c)))))
TSHIM_SOS    := $(TSHIMS:%=$(TSHIMDIR)/%.so)
PLUGKIT_SRC  := $(sort $(wildcard plugins/common/*.c))
PLUGKIT      := build/$(VARIANT)/libcwplugkit.a
PLUGIN_CFLAGS = -fPIC -fvisibility=hidden
PLUGKIT_INC   = -Iplugins/common
PLUGIN_LDFLAGS = -shared -Wl,-z,defs -Wl,-z,relro,-z,now -Wl,--version-script=core/include/crosswalk/plugin.map

UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(TESTDIR)/unit/%)
E2E_SRC   := $(sort $(wildcard tests/e2e/test_*.c))
E2E_LIB   := $(filter-out $(E2E_SRC),$(wildcard tests/e2e/*.c))
E2E_BINS  := $(E2E_SRC:tests/e2e/%.c=$(TESTDIR)/e2e/%)
# tests/testenv.c: what tests/testenv.h declares, linked into unit and e2e tests
TESTENV_OBJ := $(OBJ)/tests/testenv.o
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES:= $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
REPLAY_BINS := $(FUZZ_NAMES:%=$(TESTDIR)/fuzz/replay_%)
SCRIPT_TESTS := $(sort $(wildcard tests/scripts/test_*.sh))

# The test corpora travel with the repository (tests/fixtures/corpus/*.tar.xz,
# sources and licences in SOURCES.md there) and are unpacked into build/corpus,
# handed to the tests as CW_CORPUS. No test reads anything beside the clone.
CORPUS_TARS  := $(sort $(wildcard tests/fixtures/corpus/*.tar.xz))
CORPUS       := build/corpus
CORPUS_STAMP := $(CORPUS)/.unpacked

.PHONY: all deps deps-test deps-bench run test mutate check-abi check-format fuzz model search-params invariants compartment valuesets profiles codes install \
        uninstall clean bench tests-build

all: $(BINDIR)/crosswalk $(GATEWAY) $(PLUGIN_SOS)

# Each command installs only what it needs (tools/deps.sh names the groups).
deps:
	@tools/deps.sh run
deps-test:
	@tools/deps.sh test
deps-bench:
	@tools/deps.sh bench

run: deps
	@$(MAKE) --no-print-directory all
	exec $(BINDIR)/crosswalk serve -c conf/crosswalk.json

test: deps-test
	@$(MAKE) --no-print-directory tests-build
	@CW_BIN=$(BINDIR)/crosswalk CW_PLUGIN_DIR=$(PLUGDIR) CW_TEST_PLUGIN_DIR=$(TPLUGDIR) \
	  CW_TEST_SHIM_DIR=$(TSHIMDIR) CW_CORPUS=$(CORPUS) CW_SANITIZE=$(SANITIZE) \
	  tests/run.sh $(UNIT_BINS) $(E2E_BINS) $(REPLAY_BINS) $(SCRIPT_TESTS)

tests-build: all $(TPLUGIN_SOS) $(TSHIM_SOS) $(UNIT_BINS) $(E2E_BINS) $(REPLAY_BINS) $(CORPUS_STAMP)

$(CORPUS_STAMP): $(CORPUS_TARS)
	rm -rf $(CORPUS) $(CORPUS).tmp && mkdir -p $(CORPUS).tmp
	for t in $^; do xz -dc "$$t" | tar -xf - -C $(CORPUS).tmp || exit 1; done
	mv $(CORPUS).tmp $(CORPUS) && touch $@

# --- core ---------------------------------------------------------------
$(OBJ)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) -fPIE -c $< -o $@

$(OBJ)/core/console/assets_data.o: core/console/assets.S $(CONSOLE_WWW)
	@mkdir -p $(@D)
	$(CC) -c $< -o $@

$(LIBCORE): $(CORE_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

$(FRONT_OBJ): core/main.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) -DCW_FRONT -fPIE -c $< -o $@

$(BINDIR)/crosswalk: $(FRONT_OBJ) $(LIBCORE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(EXE_LDFLAGS) $^ $(FRONT_LIBS) -lpthread -lm -o $@

$(GATEWAY): $(MAIN_OBJ) $(LIBCORE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(EXE_LDFLAGS) $^ $(PKG_LIBS) -ldl -lpthread -lm -o $@

# --- plugins: one folder each, linked alone, exporting one symbol ---------
# Each links plugkit ($(PLUGKIT)); the linker takes only what it uses.
# (No "%" inside the prerequisite functions: make substitutes the stem there.)
$(OBJ)/plugin/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CJSON_CFLAGS) $(PLUGIN_CFLAGS) $(PLUGKIT_INC) -c $< -o $@

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

# Test shims are preloaded into the gateway, sanitized or not: built without
# the sanitizers (the gateway's runtime intercepts what they call).
$(TSHIMDIR)/%.so: $$(wildcard tests/shims/$$*/*.c)
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARN) $(HARDEN) $(CFLAGS) -fPIC -shared -Wl,-z,defs $(filter %.c,$^) -ldl -o $@

# --- tests ----------------------------------------------------------------
$(OBJ)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) $(CMOCKA_CFLAGS) -Itests $(PLUGKIT_INC) -c $< -o $@

# Unit tests, end-to-end tests and fuzz harnesses may include plugin sources
# (or test plugkit itself): plugkit is linked after the core.
$(TESTDIR)/unit/%: $(OBJ)/tests/unit/%.o $(TESTENV_OBJ) $(LIBCORE) $(PLUGKIT)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ $(PKG_LIBS) $(CMOCKA_LIBS) -ldl -lpthread -lm -o $@

$(TESTDIR)/e2e/%: $(OBJ)/tests/e2e/%.o $(E2E_LIB:tests/%.c=$(OBJ)/tests/%.o) $(TESTENV_OBJ) $(LIBCORE) $(PLUGKIT)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ $(PKG_LIBS) $(CURL_LIBS) $(CMOCKA_LIBS) -ldl -lpthread -lm -o $@

$(TESTDIR)/fuzz/replay_%: $(OBJ)/tests/fuzz/fuzz_%.o $(OBJ)/tests/fuzz/replay_main.o $(LIBCORE) $(PLUGKIT)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ $(PKG_LIBS) -ldl -lpthread -lm -o $@

# --- checks and tools -------------------------------------------------------
# Not part of `make test`: several minutes per module (see tests/mutations.txt).
mutate: deps-test
	@$(MAKE) --no-print-directory tests-build
	@tools/mutate.sh $(MUTATE)

check-abi: $(PLUGIN_SOS) $(TPLUGIN_SOS)
	@tools/check-abi.sh $^

check-format:
	@tools/check-format.sh

FUZZ_CC ?= clang
fuzz:
	@tools/deps.sh fuzz
	@mkdir -p build/fuzz
	@for n in $(FUZZ_NAMES); do \
	  echo "  FUZZ build/fuzz/fuzz_$$n"; \
	  $(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Icore -Icore/include $(PLUGKIT_INC) \
	    $(PKG_CFLAGS) -DCW_VERSION='"$(VERSION)"' tests/fuzz/fuzz_$$n.c $(CORE_SRC) core/console/assets.S $(PLUGKIT_SRC) $(PKG_LIBS) -ldl -lpthread -lm \
	    -o build/fuzz/fuzz_$$n || exit 1; \
	done
	@echo "run: build/fuzz/fuzz_NAME tests/fuzz/corpus/NAME"

model:
	@tools/deps.sh gen
	python3 tools/gen_model.py $(SHARED)/fhir-r4/package core/fhir/gen/model_data.c

search-params:
	@tools/deps.sh gen
	python3 tools/gen_search_params.py $(SHARED)/fhir-r4/package core/fhir/gen/search_params_data.c
	python3 tools/gen_fold.py core/fhir/gen/fold_data.c

invariants:
	@tools/deps.sh gen
	python3 tools/gen_invariants.py $(SHARED)/fhir-r4/package core/fhir/gen/invariants_data.c

compartment:
	@tools/deps.sh gen
	python3 tools/gen_compartment.py $(SHARED)/fhir-r4/package core/fhir/gen/compartment_data.c

valuesets:
	@tools/deps.sh gen
	python3 tools/gen_valuesets.py $(SHARED)/fhir-r4/package $(SHARED)/fhir-r4/expansions core/fhir/gen/valueset_data.c

profiles:
	@tools/deps.sh gen
	python3 tools/gen_profiles.py profiles

codes:
	@tools/deps.sh gen
	python3 tools/gen_codes.py $(SHARED)/codes profiles/codes

bench: deps-bench
	@$(MAKE) --no-print-directory all $(CORPUS_STAMP)
	@SHARED=$(SHARED) tools/bench/run.sh

# --- install ---------------------------------------------------------------
# The installed program is the same build with the paths under PREFIX compiled
# in (core/config/paths.c compiled again, linked ahead of the core library), so it
# finds its configuration, plugins and profiles from any directory:
#   SYSCONFDIR/crosswalk.json    the configuration (kept when it exists)
#   PREFIX/lib/crosswalk/plugins the plugins
#   PREFIX/share/crosswalk       profiles/, and examples/ (configurations)
#   STATEDIR                     the data directory, created 0700 at start
# The demonstration plugin echo is installed only with WITH_ECHO=1, into
# PREFIX/lib/crosswalk/demo-plugins, which no configuration loads by default
# (crosswalk serve --plugins PREFIX/lib/crosswalk/demo-plugins).
SYSCONFDIR ?= $(PREFIX)/etc/crosswalk
STATEDIR   ?= /var/lib/crosswalk
WITH_ECHO  ?=
INST_PLUGDIR  = $(PREFIX)/lib/crosswalk/plugins
INST_DEMODIR  = $(PREFIX)/lib/crosswalk/demo-plugins
INST_SHAREDIR = $(PREFIX)/share/crosswalk
INST_PATHS = -DCW_CONFIG_FILE='"$(SYSCONFDIR)/crosswalk.json"' -DCW_DATA_DIR='"$(STATEDIR)"' \
             -DCW_PLUGIN_DIR='"$(INST_PLUGDIR)"' -DCW_PROFILES_DIR='"$(INST_SHAREDIR)/profiles"'
INST_BIN := build/$(VARIANT)/install/crosswalk
INST_GATEWAY := build/$(VARIANT)/install/crosswalk-gateway
DEMO_PLUGINS := echo

.PHONY: FORCE
FORCE:
# Rebuilt on every install: PREFIX may have changed since the last one.
$(INST_BIN): $(FRONT_OBJ) $(MAIN_OBJ) $(LIBCORE) FORCE
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIE $(INST_PATHS) -c core/config/paths.c -o $(@D)/paths.o
	$(CC) $(ALL_CFLAGS) $(EXE_LDFLAGS) $(FRONT_OBJ) $(@D)/paths.o $(LIBCORE) $(FRONT_LIBS) -lpthread -lm -o $@
	$(CC) $(ALL_CFLAGS) $(EXE_LDFLAGS) $(MAIN_OBJ) $(@D)/paths.o $(LIBCORE) $(PKG_LIBS) -ldl -lpthread -lm \
	  -o $(INST_GATEWAY)

install: all $(INST_BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(INST_PLUGDIR) $(DESTDIR)$(SYSCONFDIR) \
	  $(DESTDIR)$(INST_SHAREDIR)/examples
	install -m 0755 $(INST_BIN) $(DESTDIR)$(PREFIX)/bin/crosswalk
	install -m 0755 $(INST_GATEWAY) $(DESTDIR)$(PREFIX)/lib/crosswalk/crosswalk-gateway
	$(if $(filter-out $(DEMO_PLUGINS:%=$(PLUGDIR)/%.so),$(PLUGIN_SOS)),install -m 0755 \
	  $(filter-out $(DEMO_PLUGINS:%=$(PLUGDIR)/%.so),$(PLUGIN_SOS)) $(DESTDIR)$(INST_PLUGDIR)/)
	$(if $(WITH_ECHO),install -d $(DESTDIR)$(INST_DEMODIR) && \
	  install -m 0755 $(DEMO_PLUGINS:%=$(PLUGDIR)/%.so) $(DESTDIR)$(INST_DEMODIR)/)
	rm -rf $(DESTDIR)$(INST_SHAREDIR)/profiles && cp -R profiles $(DESTDIR)$(INST_SHAREDIR)/
	chmod -R go-w $(DESTDIR)$(INST_SHAREDIR)/profiles
	install -m 0644 $(wildcard conf/examples/*.json) conf/examples/README.md $(DESTDIR)$(INST_SHAREDIR)/examples/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/crosswalk.json ]; then \
	  echo "kept $(DESTDIR)$(SYSCONFDIR)/crosswalk.json (the new default is in $(INST_SHAREDIR)/examples/)"; \
	else \
	  echo "install $(DESTDIR)$(SYSCONFDIR)/crosswalk.json"; \
	  sed -e 's|"lib/crosswalk/plugins"|"$(INST_PLUGDIR)"|' -e 's|"profiles"|"$(INST_SHAREDIR)/profiles"|' \
	      -e 's|"var"|"$(STATEDIR)"|' conf/crosswalk.json > $(DESTDIR)$(SYSCONFDIR)/crosswalk.json && \
	  chmod 0644 $(DESTDIR)$(SYSCONFDIR)/crosswalk.json; \
	fi

# Leaves SYSCONFDIR/crosswalk.json (edited by its owner) and STATEDIR (data).
uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/crosswalk $(DESTDIR)$(PREFIX)/lib/crosswalk $(DESTDIR)$(INST_SHAREDIR)

clean:
	rm -rf build bin lib

-include $(shell find build -name '*.d' 2>/dev/null)
