# mod_ecom top-level Makefile.
#
#   make            build build/mod_ecom.so (apxs, -Wall -Wextra -Werror) and tools
#   make asan       the same module with AddressSanitizer + UBSan in build/asan/
#   make unit       build and run the C unit tests of the httpd-free layer
#   make fuzz       libFuzzer on each input parser (core, path, signature,
#                   money) for FUZZ_SECONDS (30) each
#   make install    apxs -i, plus conf/ecom.load and conf/ecom.conf in mods-available
#   make run        dev server on :8080/:8443 with demo data (installs what it needs)
#   make test       the whole test suite (plain build, then sanitizer build)
#   make bench      wrk figures for the catalog against a static file
#   make bench-catalog  the catalog's read paths on 1,000,000 generated products,
#                   each beside pgbench running the same SQL
#   make import     (re)load the demo data into the dev database (UNTIL=YYYY-MM-DD:
#                   only the orders placed before that date)
#   make eval-recs  measure the running dev server's recommendations on the
#                   orders after the cut (docs/RECS_EVAL.md)
#   make lint       cppcheck and clang-tidy
#   make deb        the Debian package libapache2-mod-ecom (debian/, built in a
#                   copy of the tree under build/deb/, the .deb left there)
#   make soak       30 minutes at 50 % of saturation with a PostgreSQL restart
#                   every 5 minutes: p99, file descriptors and child RSS must
#                   not grow (scripts/soak.sh; ECOM_SOAK_MINUTES shortens it)
#   make cluster    PostgreSQL, Redis, two mod_ecom nodes and a gateway
#                   (mod_proxy_balancer + mod_proxy_hcheck) on :8100; prints
#                   the gateway's URL (scripts/cluster.sh; README, "Several nodes")
#   make cluster-stop  stops all of them
#   make bench-cluster wrk through the gateway with one node, then two
#                   (scripts/bench.sh cluster)
APXS     ?= apxs
CC       := $(shell $(APXS) -q CC 2>/dev/null || echo cc)
BUILD    := build
SRCDIR   := mod_ecom
# The httpd-free layer: plain C, unit-tested without httpd.
CORE_SRC := $(SRCDIR)/ecom_util.c $(SRCDIR)/ecom_crypto.c $(SRCDIR)/ecom_err.c \
            $(SRCDIR)/ecom_money.c $(SRCDIR)/ecom_order_state.c \
            $(SRCDIR)/ecom_signature.c $(SRCDIR)/ecom_path.c \
            $(SRCDIR)/ecom_country.c $(SRCDIR)/ecom_shipment_state.c \
            $(SRCDIR)/ecom_rate.c $(SRCDIR)/ecom_bounds.c
# The httpd glue: every other source file, so a new resource needs no edit
# here (see ecom_registry.c).
HTTPD_SRC := $(filter-out $(CORE_SRC),$(sort $(wildcard $(SRCDIR)/*.c)))
GEN_SRC  := $(BUILD)/gen/ecom_openapi.c
SRC      := $(HTTPD_SRC) $(CORE_SRC)
HDR      := $(wildcard $(SRCDIR)/*.h)
LIBS     := -ljansson -largon2 -lcrypto -lpq
# libpq-fe.h, for the error verbosity of the pooled connections (ecom_db.c)
PGINC    := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
WARN     := -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all asan unit fuzz install run test bench bench-catalog import eval-recs lint deb clean soak \
        cluster cluster-stop bench-cluster
all: $(BUILD)/mod_ecom.so $(BUILD)/ecom-passwd

$(BUILD)/gen/ecom_openapi.c: openapi/openapi.json scripts/embed.pl
	@mkdir -p $(dir $@)
	perl scripts/embed.pl ecom_openapi_json < $< > $@

# apxs (libtool) writes its objects next to the sources, so each variant
# builds from its own copy of the tree under build/.
define apxs_build
	@rm -rf $(1)/src && mkdir -p $(1)/src
	cp $(SRC) $(HDR) $(GEN_SRC) $(1)/src/
	cd $(1)/src && $(APXS) -c -o mod_ecom.la \
	    $(foreach f,$(WARN) $(2),-Wc,$(f)) $(foreach f,$(3),-Wl,$(f)) \
	    -I. -I$(PGINC) $(notdir $(SRC) $(GEN_SRC)) $(LIBS) >build.log 2>&1 \
	    || { cat build.log; exit 1; }
	# rename, never overwrite: a running httpd maps the old file
	cp $(1)/src/.libs/mod_ecom.so $(1)/mod_ecom.so.new && mv -f $(1)/mod_ecom.so.new $(1)/mod_ecom.so
endef

$(BUILD)/mod_ecom.so: $(SRC) $(HDR) $(GEN_SRC)
	$(call apxs_build,$(BUILD),-O2,)
	@echo "built $@"

$(BUILD)/asan/mod_ecom.so: $(SRC) $(HDR) $(GEN_SRC)
	$(call apxs_build,$(BUILD)/asan,-O1 $(SAN),$(SAN))
	@echo "built $@"

asan: $(BUILD)/asan/mod_ecom.so $(BUILD)/ecom-passwd

# Operator tool: prints an argon2id hash of ECOM_PASSWORD (scripts/ecom-admin uses it).
# CPPFLAGS/CFLAGS/LDFLAGS (empty by default) carry dpkg-buildflags' hardening
# in the Debian package build (apxs adds its own to the module).
$(BUILD)/ecom-passwd: tools/ecom_passwd.c $(CORE_SRC) $(HDR)
	@mkdir -p $(BUILD)
	$(CC) $(WARN) -O2 $(CPPFLAGS) $(CFLAGS) -I$(SRCDIR) -o $@ tools/ecom_passwd.c $(CORE_SRC) \
	    $(LDFLAGS) -largon2 -lcrypto

# One binary: unit_tests.c has main(), each other t/unit/*.c tests one core file.
UNIT_SRC := $(wildcard t/unit/*.c)
$(BUILD)/unit_tests: $(UNIT_SRC) t/unit/unit.h $(CORE_SRC) $(HDR)
	@mkdir -p $(BUILD)
	$(CC) $(WARN) -O1 -g $(SAN) -I$(SRCDIR) -o $@ $(UNIT_SRC) $(CORE_SRC) -largon2 -lcrypto

unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests

# libFuzzer, one target per parser of client input (needs clang and
# libclang-rt-dev): t/fuzz/fuzz_<target>.c, built with ASan + UBSan.
# `make fuzz` runs every target for FUZZ_SECONDS, each with its own corpus
# in build/fuzz-corpus/<target>/ (kept between runs), plus the seeds in
# t/fuzz/seeds/<target>/ and the dictionary t/fuzz/<target>.dict where they
# exist, and its log in build/fuzz_<target>.log;
# it prints one line per target and fails if any target found a crash
# (the input is saved as build/fuzz_<target>-crash-*).
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := core path signature money
FUZZ_CC := clang -g -O1 -fsanitize=fuzzer,address,undefined \
           -fno-sanitize-recover=undefined -I$(SRCDIR)
# longest input per target: a header over the 4096-byte limit plus a body
FUZZ_LEN_core      := 512
FUZZ_LEN_path      := 1024
FUZZ_LEN_signature := 8192
FUZZ_LEN_money     := 512

$(BUILD)/fuzz_core: t/fuzz/fuzz_core.c $(SRCDIR)/ecom_util.c $(SRCDIR)/ecom_country.c \
                    $(SRCDIR)/ecom_shipment_state.c $(HDR)
	@mkdir -p $(BUILD)
	$(FUZZ_CC) -o $@ t/fuzz/fuzz_core.c $(SRCDIR)/ecom_util.c \
	    $(SRCDIR)/ecom_country.c $(SRCDIR)/ecom_shipment_state.c

$(BUILD)/fuzz_path: t/fuzz/fuzz_path.c $(SRCDIR)/ecom_path.c $(SRCDIR)/ecom_util.c $(HDR)
	@mkdir -p $(BUILD)
	$(FUZZ_CC) -o $@ t/fuzz/fuzz_path.c $(SRCDIR)/ecom_path.c $(SRCDIR)/ecom_util.c

$(BUILD)/fuzz_signature: t/fuzz/fuzz_signature.c $(SRCDIR)/ecom_signature.c \
                         $(SRCDIR)/ecom_util.c $(HDR)
	@mkdir -p $(BUILD)
	$(FUZZ_CC) -o $@ t/fuzz/fuzz_signature.c $(SRCDIR)/ecom_signature.c \
	    $(SRCDIR)/ecom_util.c -lcrypto

$(BUILD)/fuzz_money: t/fuzz/fuzz_money.c $(SRCDIR)/ecom_money.c $(HDR)
	@mkdir -p $(BUILD)
	$(FUZZ_CC) -o $@ t/fuzz/fuzz_money.c $(SRCDIR)/ecom_money.c

# $(call fuzz_run,target): one shell step of the fuzz recipe; sets rc=1 on a crash.
define fuzz_run
mkdir -p $(BUILD)/fuzz-corpus/$(1); \
if $(BUILD)/fuzz_$(1) -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_LEN_$(1)) \
    -artifact_prefix=$(BUILD)/fuzz_$(1)- \
    $(if $(wildcard t/fuzz/$(1).dict),-dict=t/fuzz/$(1).dict) \
    $(BUILD)/fuzz-corpus/$(1) $(wildcard t/fuzz/seeds/$(1)) \
    >$(BUILD)/fuzz_$(1).log 2>&1; then \
    echo "fuzz_$(1): $$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' $(BUILD)/fuzz_$(1).log | tail -n 1)"; \
else \
    tail -n 40 $(BUILD)/fuzz_$(1).log; \
    echo "fuzz_$(1): FAILED (see $(BUILD)/fuzz_$(1).log)"; rc=1; \
fi;
endef

fuzz: $(FUZZ_TARGETS:%=$(BUILD)/fuzz_%)
	@rc=0; $(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t))) exit $$rc

install: $(BUILD)/mod_ecom.so
	$(APXS) -i -n ecom $(BUILD)/mod_ecom.so
	install -m 644 conf/ecom.load conf/ecom.conf /etc/apache2/mods-available/

deb:
	bash scripts/deb.sh

run:
	bash scripts/dev.sh

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

bench-catalog:
	bash scripts/bench-catalog.sh

soak:
	bash scripts/soak.sh

cluster:
	bash scripts/cluster.sh start

cluster-stop:
	bash scripts/cluster.sh stop

bench-cluster:
	bash scripts/bench-cluster.sh

import:
	bash scripts/import-demo.sh $(if $(UNTIL),--until $(UNTIL))

eval-recs:
	python3 scripts/eval-recs.py $(if $(CUT),--cut $(CUT))

# OpenAPI lint: Redocly (recommended) and Spectral (OWASP), pinned in tools/oaslint
.PHONY: oaslint
oaslint:
	bash scripts/oaslint.sh

# both tools on every core (clang-tidy one file per process): about half
# the time on the 2-core CI machine
NPROC    := $(shell nproc 2>/dev/null || echo 2)
lint:
	cppcheck --quiet -j $(NPROC) --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr -I$(SRCDIR) --suppress=missingIncludeSystem \
	    --suppress=missingInclude --include=tools/cppcheck-macros.h $(SRCDIR) tools \
	    t/unit t/fuzz
	printf '%s\n' $(SRC) $(UNIT_SRC) $(wildcard t/fuzz/*.c) | xargs -P $(NPROC) -I{} \
	    clang-tidy --quiet {} -- -std=gnu11 -I$(SRCDIR) -I$(PGINC) -I$$($(APXS) -q INCLUDEDIR) \
	    $$(apr-1-config --includes) $$(apu-1-config --includes)

clean:
	rm -rf $(BUILD)/*.so $(BUILD)/asan $(BUILD)/src $(BUILD)/gen $(BUILD)/ecom-passwd $(BUILD)/unit_tests \
	    $(BUILD)/fuzz_* $(BUILD)/deb
