# swiftvmm — the two commands a newcomer needs:
#   make run    install what is missing, build, boot the default guest
#   make test   install what is missing, build, run every test
SHELL := /bin/bash
SWIFT ?= swift
RELEASE_BIN := .build/release/swiftvmm
# Debian packages the build, the guests and the tests use.
APT_PACKAGES := make gcc binutils libc6-dev linux-libc-dev qemu-system-x86 busybox-static \
	acpica-tools e2fsprogs cpio lz4 xz-utils zstd kmod util-linux bsdextrautils \
	iproute2 hyperfine python3 file

.PHONY: run test deps build probe floor linux check bench fuzz clean

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
SWIFT_RELEASE_FLAGS := -c release --static-swift-stdlib -Xswiftc -static-executable
build: deps
	$(SWIFT) build $(SWIFT_RELEASE_FLAGS) --product swiftvmm

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

# build: the jail tests run the static release executable inside a chroot.
test: deps probe linux build
	$(SWIFT) build --build-tests
	$(SWIFT) test 2>&1 | tee /tmp/swiftvmm-test.log; exit $${PIPESTATUS[0]}

# swiftvmm vs the C floor VMM vs QEMU microvm: startup, memory, exit cost, block I/O,
# Linux boot in the nested test bed. Table on stdout, bench/results/latest.json.
bench: build probe floor linux
	python3 bench/run.py

# libFuzzer on every target in fuzz/targets/ (kernel loaders, virtio, devices, …):
# RUNS executions each, no time bound; prints executions per target.
RUNS ?= 1000000
fuzz: deps
	bash fuzz/run.sh $(RUNS) 0

clean:
	rm -rf .build guests/out
