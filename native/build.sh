#!/usr/bin/env bash
# Builds the C ABI into OUT: Rlhf.Native.dll (+ runtimeconfig, deps, dependencies) and librlhf.so.
#   native/build.sh OUT                      builds Rlhf.Native (Release) with dotnet, then librlhf.so with gcc
#   native/build.sh OUT --managed-from DIR   copies an existing Rlhf.Native build output from DIR instead
# Then: gcc app.c -I native/include -L OUT -lrlhf -Wl,-rpath,OUT  and  rlhf_init("OUT") in the program.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: native/build.sh OUT [--managed-from DIR]}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ "${2:-}" = "--managed-from" ]; then
  cp -r "${3:?--managed-from needs a directory}"/. "$out"/
else
  dotnet build "$here/Rlhf.Native/Rlhf.Native.csproj" -c Release -o "$out" -v quiet -nologo
fi
[ -f "$out/Rlhf.Native.dll" ] && [ -f "$out/Rlhf.Native.runtimeconfig.json" ] || { echo "build.sh: no Rlhf.Native.dll in $out" >&2; exit 1; }

cc=${CC:-gcc}
command -v "$cc" >/dev/null || { echo "build.sh: $cc not found (apt-get install gcc libc6-dev)" >&2; exit 1; }
# libnethost.a is C++: linking the runtime libstdc++.so.6 by name needs no libstdc++-dev.
# nethost (headers + static lib) ships in the apphost pack of the installed SDK; pick the newest.
dotnet_root=${DOTNET_ROOT:-$(dirname "$(readlink -f "$(command -v dotnet)")")}
nethost=$(ls -d "$dotnet_root"/packs/Microsoft.NETCore.App.Host.linux-x64/*/runtimes/linux-x64/native 2>/dev/null | sort -V | tail -1)
[ -n "$nethost" ] && [ -f "$nethost/libnethost.a" ] || { echo "build.sh: nethost not found under $dotnet_root/packs" >&2; exit 1; }

"$cc" -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
  -I "$here/include" -I "$nethost" "$here/src/rlhf_host.c" "$nethost/libnethost.a" \
  -Wl,--exclude-libs,ALL -l:libstdc++.so.6 -ldl -lpthread -o "$out/librlhf.so"
echo "$out/librlhf.so"
