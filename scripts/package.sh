#!/usr/bin/env bash
# Installable artifacts for each supported server:   package.sh [pg15] [pg18]   (default: both)
# Writes to target/dist/:
#   ctxstore-<version>-<pgNN>-linux-<arch>.tar.gz   lib/ and share/extension/ relative to the
#                                                   server's prefix (pg_config --pkglibdir/--sharedir)
#   postgresql-15-ctxstore_<version>_<arch>.deb     for Debian's PostgreSQL 15 (dpkg-deb)
#   ctxstore-<version>.zip + META.json              the PGXN source distribution
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
servers=("$@"); [ ${#servers[@]} -gt 0 ] || servers=(pg15 pg18)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
dist="$root/target/dist"
mkdir -p "$dist"
cd "$root"
for server in "${servers[@]}"; do
  pg_config=$(pg_config_for "$server")
  stage="$root/target/package/$server"
  rm -rf "$stage"; mkdir -p "$root/target/package"
  profile=(); [ "${CTXSTORE_PACKAGE_PROFILE:-release}" = debug ] && profile=(--debug)
  cargo pgrx package --pg-config "$pg_config" --no-default-features --features "$server" \
    "${profile[@]}" --out-dir "$stage" >/dev/null 2>"$stage.log" || { cat "$stage.log" >&2; exit 1; }
  pkglibdir=$("$pg_config" --pkglibdir) sharedir=$("$pg_config" --sharedir)
  # the tarball: paths relative to the server's own directories, so it unpacks into any prefix
  tree=$(mktemp -d)
  mkdir -p "$tree/lib" "$tree/share/extension"
  cp "$stage$pkglibdir"/ctxstore-"$version".so "$tree/lib/"
  cp "$stage$sharedir"/extension/ctxstore* "$tree/share/extension/"
  tarball="$dist/ctxstore-$version-$server-linux-$arch.tar.gz"
  tar -C "$tree" -czf "$tarball" lib share
  rm -rf "$tree"
  echo "$tarball"
  # a .deb where the server is Debian's own (paths under /usr)
  if [[ $pkglibdir == /usr/lib/postgresql/* ]]; then
    major=${server#pg}
    deb="$root/target/package/deb-$server"
    rm -rf "$deb"; mkdir -p "$deb/DEBIAN"
    cp -a "$stage/usr" "$deb/"
    cat > "$deb/DEBIAN/control" <<CONTROL
Package: postgresql-$major-ctxstore
Version: $version
Architecture: $arch
Maintainer: ctxstore developers <ctxstore@localhost>
Depends: postgresql-$major
Section: database
Priority: optional
Description: ctxstore: persistence layer for AI agents' context and memory
 A PostgreSQL extension: conversation contexts, long-term memories with hybrid recall,
 typed state, context assembly, encryption, audit, metrics and retention, as plain SQL.
CONTROL
    dpkg-deb --root-owner-group --build "$deb" "$dist/postgresql-$major-ctxstore_${version}_$arch.deb" >/dev/null
    echo "$dist/postgresql-$major-ctxstore_${version}_$arch.deb"
    rm -rf "$deb"
  fi
  rm -rf "$stage" "$stage.log"
done
# PGXN: META.json (version from Cargo.toml) and a source archive of the committed tree
sed "s/@VERSION@/$version/g" "$root/scripts/META.json.in" > "$dist/META.json"
git -C "$root" archive --format=zip --prefix="ctxstore-$version/" \
  --add-file="$dist/META.json" -o "$dist/ctxstore-$version.zip" HEAD
echo "$dist/ctxstore-$version.zip"
