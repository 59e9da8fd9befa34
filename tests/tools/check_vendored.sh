#!/usr/bin/env bash
# Check that every file vendored under crates/gateway/ui/vendor/ is byte for byte the one in
# its npm release: for each vendor/<package>-<version>/ directory, fetch that release's
# tarball from the npm registry (npm pack) and compare each vendored file with the tarball's
# copy (found by name under package/ or package/dist/).
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for dir in crates/gateway/ui/vendor/*/; do
  release=$(basename "$dir")
  package=${release%-*}
  version=${release##*-}
  (cd "$work" && npm pack --silent "$package@$version" >/dev/null)
  mkdir -p "$work/$release"
  tar -xzf "$work/$package-$version.tgz" -C "$work/$release"
  for file in "$dir"*; do
    name=$(basename "$file")
    published=""
    for candidate in "$work/$release/package/$name" "$work/$release/package/dist/$name"; do
      [[ -f $candidate ]] && published=$candidate && break
    done
    if [[ -z $published ]]; then
      echo "$file: not in $package@$version from npm" >&2
      status=1
    elif ! cmp -s "$file" "$published"; then
      echo "$file: differs from $package@$version from npm" >&2
      status=1
    fi
  done
  echo "$release: vendored files match the npm release" >&2
done
exit $status
