#!/usr/bin/env bash
# Packs, from this (Debian 12, x86-64) machine, what the GPU machine lacks to build hylora — it has nvcc, cmake,
# ninja and g++ but none of the -dev packages and no package registry — into PREFIX (default /tmp/hydeps) and
# PREFIX.tar.xz, for `scripts/gpu_score_checks.sh --deps PREFIX` there: pkg-config (pkgconf), OpenBLAS (+ gfortran,
# quadmath), PCRE2, utf8proc, cpp-httplib (+ brotli; OpenSSL and zlib headers, whose libraries the GPU image has),
# nlohmann_json and CLI11 (headers + CMake configs). Each .pc file is rewritten relative to its own folder.
set -euo pipefail
D=${1:-/tmp/hydeps}
L=/usr/lib/x86_64-linux-gnu
rm -rf "$D"
mkdir -p "$D"/bin "$D"/lib/pkgconfig "$D"/include "$D"/share/cmake
cp "$(readlink -f /usr/bin/pkg-config)" "$D"/bin/pkg-config
cp -L /lib/x86_64-linux-gnu/libpkgconf.so.3 $L/openblas-pthread/libopenblas.so.0 $L/libgfortran.so.5 \
  $L/libquadmath.so.0 $L/libpcre2-8.so.0 $L/libutf8proc.so.2 $L/libcpp-httplib.so.0.11 $L/libbrotlicommon.so.1 \
  $L/libbrotlidec.so.1 $L/libbrotlienc.so.1 "$D"/lib/
(cd "$D"/lib && ln -s libopenblas.so.0 libopenblas.so && ln -s libpcre2-8.so.0 libpcre2-8.so &&
  ln -s libutf8proc.so.2 libutf8proc.so && ln -s libcpp-httplib.so.0.11 libcpp-httplib.so)
cp /usr/include/x86_64-linux-gnu/openblas-pthread/*.h /usr/include/pcre2.h /usr/include/utf8proc.h \
  /usr/include/httplib.h /usr/include/zlib.h /usr/include/zconf.h "$D"/include/
cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/brotli /usr/include/openssl "$D"/include/
cp /usr/include/x86_64-linux-gnu/openssl/*.h "$D"/include/openssl/
cp -r /usr/share/cmake/CLI11 /usr/share/cmake/nlohmann_json "$D"/share/cmake/
pc() {  # name version libs cflags
  printf 'prefix=${pcfiledir}/../..\nlibdir=${prefix}/lib\nincludedir=${prefix}/include\n\nName: %s\nDescription: carried for the GPU build\nVersion: %s\nLibs: -L${libdir} %s\nCflags: -I${includedir} %s\n' \
    "$1" "$2" "$3" "$4" >"$D/lib/pkgconfig/$1.pc"
}
pc openblas "$(pkg-config --modversion openblas)" -lopenblas ""
pc libpcre2-8 "$(pkg-config --modversion libpcre2-8)" -lpcre2-8 ""
pc libutf8proc "$(pkg-config --modversion libutf8proc)" -lutf8proc -DUTF8PROC_EXPORTS
pc cpp-httplib "$(pkg-config --modversion cpp-httplib)" "-lcpp-httplib -pthread" \
  "-DCPPHTTPLIB_OPENSSL_SUPPORT -DCPPHTTPLIB_ZLIB_SUPPORT -DCPPHTTPLIB_BROTLI_SUPPORT"
tar cJf "$D.tar.xz" -C "$(dirname "$D")" "$(basename "$D")"
du -sh "$D" "$D.tar.xz"
