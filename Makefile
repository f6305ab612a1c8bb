# fc-identity-agent — every command a developer or CI needs.
SHELL := /bin/bash
TARGET := x86_64-unknown-linux-gnu
GLIBC := 2.28
DIST := dist
BIN := fc-identity-agent
PY := python3

.PHONY: dev dev-trace run test test-deps release check-release deploy fmt lint bench bench-micro bench-instructions

## Run the whole flow locally against the stand-ins (no cloud account): the devstack binary starts them and
## runs the freshly built function as its child, and serves the chat page (DEVSTACK_CHAT_PORT, default 9001).
## DEV_ARGS go to devstack, e.g. DEV_ARGS="--mcp-deny helloworld"; the function inherits the environment
## (TOOL_APPROVAL=helloworld make dev: the chat page shows Approve / Decline).
dev:
	cargo build --bin $(BIN)
	@# Without the conformance client (devstack's default feature), which would compile the function's library.
	cargo run -p devstack --no-default-features --bin devstack -- --function target/debug/$(BIN) $(DEV_ARGS)

## `make dev` with OpenTelemetry on: a local OTLP/HTTP receiver (the tests' own, tests/clients/otlp_receiver.py,
## in a venv with opentelemetry-proto) on :4318 prints the span tree of every turn as it arrives.
.PHONY: dev-trace
OTLP_VENV := target/clients/venv-otlp
dev-trace:
	@test -x $(OTLP_VENV)/bin/python || { $(PY) -m venv $(OTLP_VENV) && $(OTLP_VENV)/bin/pip install -q -r tests/clients/requirements-otlp.txt && cp tests/clients/requirements-otlp.txt $(OTLP_VENV)/requirements.installed; }
	cargo build --bin $(BIN)
	@$(OTLP_VENV)/bin/python tests/clients/otlp_receiver.py --port 4318 --print-tree & receiver=$$!; \
	trap "kill $$receiver" EXIT; \
	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_METRIC_EXPORT_INTERVAL=0 \
	  cargo run -p devstack --no-default-features --bin devstack -- --function target/debug/$(BIN) $(DEV_ARGS)

## Run against the real cloud with the environment you have set (see README: Configuration).
run:
	cargo run --release --bin $(BIN)

## Everything CI runs: unit + integration tests over real sockets (the function's, the stand-ins' and the
## bench harness's; tests/clients.rs includes the chat page in a headless Chromium, which needs Debian's
## chromium and chromium-driver), the s.yaml schema check, and the official MCP conformance suite against the
## function's MCP client (tests/mcp-conformance; docs/mcp-conformance.md).
test: test-deps
	cargo test --workspace --all-targets
	@# A bare `cargo run` at the root must reach the function, not one of the workspace's other binaries.
	@cargo run -q -- --help 2>&1 | grep -q 'usage: fc-identity-agent' || { echo 'cargo run does not start fc-identity-agent'; exit 1; }
	$(PY) tests/deploy/check_s_yaml.py
	@# The conformance client, built with the test build's features so that it links what `cargo test` just
	@# built (`--tests` is already fresh). A bare `cargo build -p devstack` leaves out the dev-dependencies'
	@# features (tokio's test-util) and would compile tokio and everything above it a second time.
	cargo build --workspace --tests --bin mcp-conformance-client
	tests/mcp-conformance/run.sh target/debug/mcp-conformance-client

## The MCP conformance suite alone (Node 22 and the suite come from npm into tests/mcp-conformance/node_modules).
.PHONY: test-mcp-conformance
test-mcp-conformance:
	cargo build -p devstack --bin mcp-conformance-client
	tests/mcp-conformance/run.sh target/debug/mcp-conformance-client

test-deps:
	@$(PY) -c 'import jsonschema, yaml' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check jsonschema pyyaml

## The FC binary: glibc 2.28 (custom.debian10), rustls, no stand-ins, into dist/ with bootstrap.
release:
	@command -v cargo-zigbuild >/dev/null || cargo install --locked cargo-zigbuild
	@$(PY) -c 'import ziglang' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check ziglang
	cargo zigbuild --release --bin $(BIN) --target $(TARGET).$(GLIBC)
	rm -rf $(DIST) && mkdir -p $(DIST)
	cp target/$(TARGET)/release/$(BIN) $(DIST)/$(BIN)
	cp bootstrap $(DIST)/bootstrap && chmod +x $(DIST)/bootstrap $(DIST)/$(BIN)
	$(MAKE) check-release

## Fails if the release binary needs a glibc newer than 2.28 or links OpenSSL.
check-release:
	@newest=$$(objdump -T $(DIST)/$(BIN) | grep -o 'GLIBC_[0-9.]*' | sort -t. -k1,1 -k2,2n -k3,3n -V | uniq | tail -n1); \
	echo "highest glibc symbol version: $$newest"; \
	if printf '%s\n' "$$newest" "GLIBC_$(GLIBC)" | sort -V | tail -n1 | grep -qv "^GLIBC_$(GLIBC)$$"; then \
	  echo "error: $$newest is newer than GLIBC_$(GLIBC)"; exit 1; fi
	@if objdump -p $(DIST)/$(BIN) | grep NEEDED | grep -Eiq 'ssl|crypto'; then \
	  echo "error: the binary links OpenSSL"; exit 1; fi
	@objdump -p $(DIST)/$(BIN) | grep NEEDED
	@ls -l $(DIST)

## Benchmarks (not tests): the release binary FC runs, driven as a separate process against the stand-ins.
## Prints the figures and writes them into BENCHMARKS.md. BENCH_ARGS=--quick for a short smoke run.
BENCH_FN := target/bench/$(BIN)
bench:
	cargo build --release --bin $(BIN)
	mkdir -p $(dir $(BENCH_FN)) && cp target/release/$(BIN) $(BENCH_FN)
	cargo run --release -p bench -- --function $(BENCH_FN) --out BENCHMARKS.md $(BENCH_ARGS)

## The FC-sized mode (root, cgroups): the function inside a cgroup per FC instance size, bursts of 10/100/200
## concurrent tool turns; writes its own section of BENCHMARKS.md. BENCH_ARGS="--sizes 0.05/128 --bursts 100".
.PHONY: bench-fc-sized
bench-fc-sized:
	cargo build --release --bin $(BIN)
	mkdir -p $(dir $(BENCH_FN)) && cp target/release/$(BIN) $(BENCH_FN)
	cargo run --release -p bench -- --fc-sized --function $(BENCH_FN) --out BENCHMARKS.md $(BENCH_ARGS)

## Instructions per warm tool turn on each face (valgrind callgrind): steady where wall-clock figures on a
## shared machine are not. BENCH_ARGS="--env SESSION_STORE=none --faces process,a2a".
.PHONY: bench-stores
## SESSION_STORE=memory vs none by hand: 2,000 warm turns each, CPU per turn from /proc (crates/bench/stores.py).
bench-stores:
	cargo build --release --workspace --bin $(BIN) --bin bench
	python3 crates/bench/stores.py . release:memory,release:none $(BENCH_ARGS)

.PHONY: bench-instructions
bench-instructions:
	cargo build --release --workspace --bin $(BIN) --bin bench
	python3 crates/bench/instructions.py . $(BENCH_ARGS)

## Micro-benchmarks (divan): signer, SSE decoding, event encoding.
bench-micro:
	cargo bench --bench micro

deploy: release
	s deploy -y

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
