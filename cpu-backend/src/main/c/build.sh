#!/usr/bin/env bash
# Builds the native kernels: OUT/linux-x86_64/libenclave_cpu.so with the host gcc, OUT/linux-aarch64/libenclave_cpu.so
# with Debian's aarch64-linux-gnu-gcc (package gcc-aarch64-linux-gnu), and for the tests the conformance driver
# of each architecture into TEST_OUT. One source; the instruction sets are chosen at run time inside the library.
set -euo pipefail
out="$1"; test_out="$2"
src="$(cd "$(dirname "$0")" && pwd)"
flags=(-O3 -fPIC -Wall -Wextra -Werror -fvisibility=default -std=gnu11 -ffp-contract=off) # no implicit FMAs: scalar code rounds as ggml's
build() { # arch compiler
  local arch="$1" cc="$2"
  mkdir -p "$out/linux-$arch" "$test_out/linux-$arch"
  "$cc" "${flags[@]}" -shared -o "$out/linux-$arch/libenclave_cpu.so" "$src/enclave_cpu.c" -lm
  "$cc" "${flags[@]}" -o "$test_out/linux-$arch/conformance" "$src/conformance.c" "$src/enclave_cpu.c" -lm
}
case "$(uname -m)" in
  x86_64) build x86_64 gcc ;;
  aarch64) build aarch64 gcc ;;
esac
if [ "$(uname -m)" != aarch64 ]; then
  if command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
    build aarch64 aarch64-linux-gnu-gcc
  elif [ "${CI:-}" = true ]; then
    echo "build.sh: aarch64-linux-gnu-gcc is missing (apt-get install gcc-aarch64-linux-gnu)" >&2; exit 1
  else
    echo "build.sh: no aarch64-linux-gnu-gcc here: the aarch64 library is not built" >&2
  fi
fi
