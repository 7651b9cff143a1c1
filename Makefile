# muser: `make run` (demo) and `make check` (every test) on a fresh Debian 12.
BUILD ?= build
MESON_OPTS ?=
ifeq ($(CI),true)
MESON_OPTS += -Dwerror=true
endif

.PHONY: all deps build run demo-migrate check check-unit check-sanitize check-valgrind check-fuzz clean fuzz format

all: build

deps:
	@./scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# VMM=native: the same demo on QEMU >= 10.1's own vfio-user client (from
# Debian testing, in a chroot cached in /var/cache/muser; no shim).
VMM ?= shim
run: build
	./scripts/demo.sh $(BUILD) $(VMM)

# Live migration of a busy dma-test between two processes (tools/migrate).
demo-migrate: build
	./$(BUILD)/tools/migrate/muser-migrate-demo

check: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2
	$(MAKE) check-sanitize
	$(MAKE) check-valgrind
	$(MAKE) check-fuzz

# The whole suite again under ASan+UBSan (clang), in its own build dir.
check-sanitize: deps
	@[ -f $(BUILD)-asan/build.ninja ] || CC=clang meson setup $(BUILD)-asan \
		-Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)
	ninja -C $(BUILD)-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(BUILD)-asan --print-errorlogs --num-processes 2 --no-suite slow

# The library tests under valgrind: memory errors and definite leaks fail
# (the nvme suite: its host driver, libmuser-client, under valgrind too).
check-valgrind: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 \
		--suite unit --suite device --suite client --suite migration \
		--suite nvme \
		--wrapper 'valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --track-fds=yes -q'

# libFuzzer harnesses: `make fuzz FUZZ_SECONDS=600` for a real run;
# check-fuzz is the short smoke that `make check` runs.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -g
fuzz-setup: deps
	@[ -f $(BUILD)-fuzz/build.ninja ] || CC=clang CFLAGS="$(FUZZ_CFLAGS)" \
		LDFLAGS="-fsanitize=address,undefined" meson setup $(BUILD)-fuzz \
		-Dfuzz=true -Dtests=false -Db_lundef=false
	ninja -C $(BUILD)-fuzz

fuzz: fuzz-setup
	meson configure $(BUILD)-fuzz -Dfuzz_seconds=$(FUZZ_SECONDS)
	meson test -C $(BUILD)-fuzz --suite fuzz --print-errorlogs --num-processes 1

check-fuzz: fuzz-setup
	meson configure $(BUILD)-fuzz -Dfuzz_seconds=3
	meson test -C $(BUILD)-fuzz --suite fuzz --print-errorlogs --num-processes 2

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
