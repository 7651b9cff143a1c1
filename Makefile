# muser: `make run` (demo) and `make check` (every test) on a fresh Debian 12.
BUILD ?= build
MESON_OPTS ?=
ifeq ($(CI),true)
MESON_OPTS += -Dwerror=true
endif

.PHONY: all deps build run check check-unit check-sanitize check-valgrind clean fuzz format

all: build

deps:
	@./scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	./scripts/demo.sh $(BUILD)

check: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2
	$(MAKE) check-sanitize

# The whole suite again under ASan+UBSan (clang), in its own build dir.
check-sanitize: deps
	@[ -f $(BUILD)-asan/build.ninja ] || CC=clang meson setup $(BUILD)-asan \
		-Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)
	ninja -C $(BUILD)-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(BUILD)-asan --print-errorlogs --num-processes 2 --no-suite slow

check-valgrind: build
	meson test -C $(BUILD) --print-errorlogs --suite unit \
		--wrapper 'valgrind --error-exitcode=1 --leak-check=full --track-fds=yes -q'

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan
