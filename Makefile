# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
.PHONY: demo test build bench stack-start stack-stop stack-status

build:
	cargo build

# Starts the local stack (if needed), runs the embedded demo and leaves the stack running.
demo: build
	SYNCLINE_KEEP_STACK=1 scripts/with-stack.sh ./target/debug/syncline demo
	@echo "(the local stack is still running: 'scripts/stack.sh stop' stops it)"

# fmt, clippy, unit and integration tests; starts and stops the stack if it was not running.
test:
	scripts/test.sh

stack-start:
	scripts/stack.sh start
stack-stop:
	scripts/stack.sh stop
stack-status:
	scripts/stack.sh status

# Throughput and latency against a passthrough baseline; writes BENCHMARKS.md (needs ~5 min).
bench:
	SYNCLINE_KEEP_STACK=1 scripts/with-stack.sh cargo bench --bench pipeline
