# swiftvmm — the two commands a newcomer needs:
#   make run    install what is missing, build, boot the default guest
#   make test   install what is missing, build, run every test
SHELL := /bin/bash
SWIFT ?= swift
RELEASE_BIN := .build/release/swiftvmm
# Debian packages the build, the guests and the tests use.
APT_PACKAGES := make gcc binutils libc6-dev linux-libc-dev qemu-system-x86 busybox-static \
	acpica-tools e2fsprogs cpio lz4 xz-utils zstd kmod util-linux bsdextrautils \
	iproute2 hyperfine python3 python3-venv file curl socat nftables python3-nftables valgrind qemu-utils zlib1g-dev

.PHONY: run test deps build probe floor linux check bench order-file fuzz fuzz-smoke clean pyenv

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The release build for users: one fully static executable (Swift runtime and glibc
# linked in; no ld.so at start-up). Measured against --static-swift-stdlib alone
# (BENCHMARKS.md): resident overhead 7.2 vs 10.1 MiB, exec → main ~1 ms less.
# Linked by lld with each function in its own section and the functions `run` executes
# placed together (bench/run-path.order, made by bench/order-file.py): the kernel maps
# text in 64 KiB fault-around windows, so scattered hot code kept ~1.1 MiB more resident.
SWIFT_RELEASE_FLAGS := -c release --static-swift-stdlib -Xswiftc -static-executable \
	-Xswiftc -use-ld=lld -Xswiftc -Xfrontend -Xswiftc -function-sections \
	-Xlinker --symbol-ordering-file=$(CURDIR)/bench/run-path.order -Xlinker --no-warn-symbol-ordering
build: deps
	@# SwiftPM does not see the order file as an input: relink when it changed.
	@[ ! bench/run-path.order -nt $(RELEASE_BIN) ] || rm -f $$(readlink -f $(RELEASE_BIN))
	$(SWIFT) build $(SWIFT_RELEASE_FLAGS) --product swiftvmm
	@# Tools written for Firecracker's jailer run `jailer`: the link is `swiftvmm jail`.
	ln -sfn swiftvmm $(dir $(RELEASE_BIN))jailer

probe: deps
	$(MAKE) -C guests probe

floor: deps
	$(MAKE) -C bench/floor

check: build
	$(RELEASE_BIN) check

# The main job: check the host, then boot the probe kernel with its console on this
# terminal (type `help`; `poweroff` or Ctrl-A x ends it).
run: build probe
	$(RELEASE_BIN) check
	$(RELEASE_BIN) run --kernel guests/out/probe.bzImage

linux: deps
	guests/linux/build

# Python tools the tests drive swiftvmm with (PyPI): a third-party Firecracker client and
# schemathesis for the OpenAPI document. In .build/, so it stays out of git.
PYENV := .build/pyenv
PY_PACKAGES := firecracker-python==0.0.5 schemathesis==4.32.5
pyenv: $(PYENV)/.installed
$(PYENV)/.installed: Makefile
	python3 -m venv $(PYENV)
	$(PYENV)/bin/pip install -q --disable-pip-version-check $(PY_PACKAGES)
	touch $@

# build: the jail tests run the static release executable inside a chroot.
test: deps probe linux build pyenv fuzz-smoke
	$(SWIFT) build --build-tests
	$(SWIFT) test 2>&1 | tee /tmp/swiftvmm-test.log; exit $${PIPESTATUS[0]}

# swiftvmm vs the C floor VMM vs QEMU microvm: startup, memory, exit cost, block I/O,
# snapshot, restore and live migration (bench/snapshot.py), Linux boot, and TCP/vsock
# throughput with QEMU in the same L1, in the nested test bed.
# Table on stdout, bench/results/latest.json.
# QUICK=1: the 2-minute subset (fewer repetitions, no nested Linux boot or network run). Exit status: 0
# every budget met, 1 a step failed or swiftvmm crashed, 3 a budget missed; the last two
# lines (STEPS:, BUDGETS:) say the same for scripts.
bench: build probe floor $(if $(QUICK),,linux)
	python3 bench/run.py $(if $(QUICK),--quick)

# Regenerate bench/run-path.order after changes to what `run` executes (needs valgrind).
order-file: build probe
	python3 bench/order-file.py

# libFuzzer on every target in fuzz/targets/ (kernel loaders, virtio, devices, …):
# RUNS executions each, no time bound; prints executions per target.
RUNS ?= 1000000
fuzz: deps
	bash fuzz/run.sh $(RUNS) 0

# make test builds the fuzz targets and runs a short pass, so they cannot stop compiling
# (or start crashing on the seeds) unnoticed: SMOKE_RUNS executions, at most SMOKE_SECONDS
# (measured on this 2-core host at load ~27, niced: 20000 runs 141 s, the whole step 19 min,
# nearly all of it the optimised sanitizer build of KVMKit and VirtioDevices).
SMOKE_RUNS ?= 20000
SMOKE_SECONDS ?= 15
fuzz-smoke: deps
	bash fuzz/run.sh $(SMOKE_RUNS) $(SMOKE_SECONDS)

clean:
	rm -rf .build guests/out
