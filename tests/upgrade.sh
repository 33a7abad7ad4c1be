#!/usr/bin/env bash
# Upgrade test:   upgrade.sh pg15|pg18   (after scripts/install.sh)
# Builds the newest release recorded in RELEASES from its commit (a git worktree), installs it
# beside the current build (each version has its own library), loads tests/upgrade/fixture.sql
# with it, runs ALTER EXTENSION ctxstore UPDATE, and checks that
#   (a) every fixture row reads back identically through the API (tests/upgrade/snapshot.sql),
#   (b) the upgraded schema describes exactly like a fresh install's (tests/upgrade/describe.sql),
#   (c) the current version differs from the release only with an upgrade script
#       sql/ctxstore--<release>--<current>.sql, and the schema only changes with the version.
# Right after a release bump (Cargo.toml's version is the newest in RELEASES) the build must
# equal that release's schema, and the upgrade is tested from the release before it; with no
# earlier release there is nothing to upgrade from, which is reported as a skip, not a pass.
source "$(dirname "$0")/lib.sh"
server=$1
pg_config=$(pg_config_for "$server")
bindir=$(bindir_of "$server")
current=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
mapfile -t releases < <(grep -v '^#' "$root/RELEASES" | awk 'NF == 2')
[ ${#releases[@]} -gt 0 ] || fail "RELEASES lists no release"
scratch_dir
pkglibdir=$("$pg_config" --pkglibdir)
sharedir=$("$pg_config" --sharedir)/extension
# a release's files share names with the current build's right after a bump: whatever happens,
# the tiers after this one find the current build installed
at_exit '"$root/scripts/install.sh" "$server" >/dev/null 2>&1'

# build_release VERSION COMMIT: installs that release's library and script beside the others.
# Built once per server and commit and kept (~120 MB, a debug build); its build tree (GBs) is
# deleted once they are copied out.
build_release() {
  local release=$1 commit=$2
  local worktree="$root/tmp/release-$release" cache="$root/tmp/release-$release-$server"
  if [ "$(cat "$cache/commit" 2>/dev/null)" != "$commit" ]; then
    rm -rf "$cache"
    # the release's tree, built with its own lock file into its own target directory
    if ! git -C "$root" cat-file -e "$commit^{commit}" 2>/dev/null; then
      git -C "$root" fetch -q origin "$commit" 2>/dev/null \
        || fail "release $release: commit $commit is not in this clone (a shallow clone? fetch it or clone fully)"
    fi
    if [ "$(git -C "$worktree" rev-parse HEAD 2>/dev/null)" != "$commit" ]; then
      rm -rf "$worktree"
      git -C "$root" worktree prune
      git -C "$root" worktree add -q --detach "$worktree" "$commit"
    fi
    echo "upgrade ($server): building release $release from ${commit:0:12}" >&2
    target="$root/tmp/release-target-$server"
    if ! (cd "$worktree" && CARGO_TARGET_DIR="$target" CARGO_PROFILE_DEV_DEBUG=false CARGO_INCREMENTAL=0 \
           cargo pgrx install --pg-config "$pg_config" --no-default-features --features "$server") >"$work/build.log" 2>&1; then
      tail -n 40 "$work/build.log" >&2
      fail "building release $release"
    fi
    mkdir -p "$cache"
    cp "$pkglibdir/ctxstore-$release.so" "$sharedir/ctxstore--$release.sql" "$cache/"
    echo "$commit" > "$cache/commit"
    rm -rf "$target"
  else
    install -m 755 "$cache/ctxstore-$release.so" "$pkglibdir/"
    install -m 644 "$cache/ctxstore--$release.sql" "$sharedir/"
  fi
}

read -r release commit <<<"${releases[-1]}"
newest_commit=$commit
build_release "$release" "$commit"
if [ "$release" = "$current" ]; then
  # (c) a released version's schema never changes
  "$root/scripts/install.sh" "$server" 2>/dev/null
  if ! cmp -s "$sharedir/ctxstore--$current.sql" "$root/tmp/release-$release-$server/ctxstore--$release.sql"; then
    fail "the generated schema changed since release $release, but Cargo.toml still says $release:" \
         "bump the version and add sql/ctxstore--$release--<new>.sql"
  fi
  if [ ${#releases[@]} -lt 2 ]; then
    echo "upgrade ($server): SKIPPED: $current is the only release; there is nothing to upgrade from"
    result 0 1 0 "upgrade paths"
    exit 0
  fi
  read -r release commit <<<"${releases[-2]}"
  echo "upgrade ($server): $current is released; testing the upgrade from the release before it, $release"
  build_release "$release" "$commit"
fi
# the current build last: its control file names the current default version
"$root/scripts/install.sh" "$server" 2>/dev/null

script="$root/sql/ctxstore--$release--$current.sql"
[ -f "$script" ] || fail "no upgrade script $script from the last release"
head -n 3 "$script" | grep -q "\\\\echo Use \"ALTER EXTENSION ctxstore UPDATE TO '$current'\"" \
  || fail "$script lacks the \\echo … \\quit guard"
for f in "$root"/sql/ctxstore--*--*.sql; do
  if git -C "$root" cat-file -e "$newest_commit:sql/$(basename "$f")" 2>/dev/null \
     && ! git -C "$root" diff --quiet "$newest_commit" -- "sql/$(basename "$f")"; then
    fail "released upgrade script $(basename "$f") was edited after release $release"
  fi
done

throwaway_cluster "$server" upgrade $((58000 + ${server#pg})) \
  "ctxstore.master_key=fixture:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
psql -d postgres -c "CREATE DATABASE upgraded" -c "CREATE DATABASE fresh"
psql -d upgraded -c "CREATE EXTENSION ctxstore VERSION '$release'"
[ "$(psql -d upgraded -tAc "SELECT extversion FROM pg_extension WHERE extname = 'ctxstore'")" = "$release" ] \
  || fail "could not create version $release"
psql -d upgraded -f "$root/tests/upgrade/fixture.sql" >/dev/null
psql -d upgraded -f "$root/tests/upgrade/snapshot.sql" > "$work/before.txt"
# the audit log, row by row (its chain columns aside: the chain becomes one per tenant)
audit_rows="SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', id, tenant, table_name, operation, row_key, columns, row_hash), ',' ORDER BY id)) FROM ctx.audit_log"
audit_before=$(psql -d upgraded -tAc "$audit_rows")
# each step in a new session: a backend that loaded one version's library must not load another's
psql -d upgraded -c "ALTER EXTENSION ctxstore UPDATE"
[ "$(psql -d upgraded -tAc "SELECT extversion FROM pg_extension WHERE extname = 'ctxstore'")" = "$current" ] \
  || fail "ALTER EXTENSION ctxstore UPDATE did not reach $current"
psql -d upgraded -f "$root/tests/upgrade/snapshot.sql" > "$work/after.txt"
if ! diff -u "$work/before.txt" "$work/after.txt" > "$work/data.diff"; then
  cat "$work/data.diff" >&2
  fail "data read through the API changed across the upgrade $release -> $current"
fi
# every audit row kept, sealed rows with their hashes; each tenant's chain verifies
[ "$(psql -d upgraded -tAc "$audit_rows")" = "$audit_before" ] || fail "audit rows changed across the upgrade"
tenant_chains=$(psql -d upgraded -tAc "SELECT count(*) || ' ' || bool_and(v.ok)
                                       FROM (SELECT DISTINCT tenant FROM ctx.audit_log) t, ctx.verify_audit(t.tenant) v")
[ "${tenant_chains#* }" = true ] && [ "${tenant_chains% *}" -ge 3 ] \
  || fail "the per-tenant audit chains do not all verify after the upgrade ($tenant_chains: tenants, all ok)"
# an audit chain that does not verify is not re-sealed: the upgrade refuses, and nothing changes
psql -d postgres -c "CREATE DATABASE tampered"
psql -d tampered -c "CREATE EXTENSION ctxstore VERSION '$release'" \
  -c "SELECT ctx.create_context('audited') IS NOT NULL" -c "SELECT ctx.seal_audit()" \
  -c "UPDATE ctx.audit_log SET actor = 'someone else' WHERE chain_seq = 1" >/dev/null
if refusal=$(psql -d tampered -c "ALTER EXTENSION ctxstore UPDATE" 2>&1); then
  fail "the upgrade re-sealed an audit chain that does not verify"
fi
grep -q "the audit chain does not verify" <<<"$refusal" || fail "the upgrade of a tampered audit log failed otherwise: $refusal"
[ "$(psql -d tampered -tAc "SELECT extversion FROM pg_extension WHERE extname = 'ctxstore'")" = "$release" ] \
  || fail "a refused upgrade left the extension changed"
# what the upgrade repairs: a binding of a role whose name needs quoting now binds it; the
# namespace processor settings of 0.1.0 (global) hold for every tenant that had data
[ "$(psql -d upgraded -tAc 'SET ROLE "Fixture-App"' -c "SET ctxstore.tenant = 'other'" -c 'SELECT ctx.current_tenant()')" = fixture-quoted ] \
  || fail "the binding of \"Fixture-App\" made under $release does not bind it after the upgrade"
[ "$(psql -d upgraded -tAc "SET ctxstore.tenant = 'fixture-plain'" \
       -c "SELECT ctx.put('{fixture,pii}', 'after', '{\"email\": \"grace@example.com\"}')" \
       -c "SELECT ctx.get('{fixture,pii}', 'after') ->> 'email'" | tail -n 1)" = '[REDACTED:email]' ] \
  || fail "the namespace processor settings of $release do not apply to tenant fixture-plain after the upgrade"
# messages of the release get generated ids (uuids, distinct) and revision 1
[ "$(psql -d upgraded -tAc "SELECT count(*) > 0 AND count(DISTINCT message_id) = count(*)
                                   AND bool_and(message_id ~ '^[0-9a-f-]{36}$' AND revision = 1 AND NOT deleted
                                                AND written_at = created_at)
                              FROM ctx.messages")" = t ] \
  || fail "the release's messages did not all get a distinct generated id and revision 1"
psql -d fresh -c "CREATE EXTENSION ctxstore"
# the fixture's roles, granted under the release, get the new tables as the README says
for db in upgraded fresh; do
  psql -d "$db" -c "SELECT ctx.grant_access('\"Fixture-App\"'), ctx.grant_access('fixture_app')" >/dev/null
done
psql -d upgraded -f "$root/tests/upgrade/describe.sql" > "$work/upgraded-schema.txt"
psql -d fresh -f "$root/tests/upgrade/describe.sql" > "$work/fresh-schema.txt"
if ! diff -u "$work/fresh-schema.txt" "$work/upgraded-schema.txt" > "$work/schema.diff"; then
  cat "$work/schema.diff" >&2
  fail "the schema upgraded from $release differs from a fresh $current install (- fresh, + upgraded)"
fi
# where pgvector is installed: embeddings the release stored as real[], under an HNSW index,
# become ctx.embedding, and the index is rebuilt over the stored bytes
if [ -f "$sharedir/vector.control" ]; then
  psql -d postgres -c "CREATE DATABASE indexed"
  psql -d indexed -c "CREATE EXTENSION vector" -c "CREATE EXTENSION ctxstore VERSION '$release'"
  psql -d indexed -c "SELECT count(ctx.remember('{docs}', 'doc ' || i, ARRAY[sin(i), cos(i), (i % 7) / 7.0]::real[]))
                        FROM generate_series(1, 300) i" -c "SELECT ctx.create_vector_index(3, 'l2')" >/dev/null
  # an index of the user's own over the column: dropped with a warning, not a failed upgrade
  psql -d indexed -c "CREATE INDEX users_own ON ctx.memories ((cardinality(embedding)))"
  stored=$(psql -d indexed -tAc "SELECT md5(string_agg(id || ':' || embedding::text, ',' ORDER BY id, version)) FROM ctx.memories")
  psql -d indexed -c "ALTER EXTENSION ctxstore UPDATE" 2> "$work/indexed-update.log"
  grep -q 'WARNING:  dropping index ctx.users_own over ctx.memories.embedding' "$work/indexed-update.log" \
    || fail "the upgrade did not warn about the user's own index over the embedding column: $(cat "$work/indexed-update.log")"
  [ "$(psql -d indexed -tAc "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                              WHERE attrelid = 'ctx.memories'::regclass AND attname = 'embedding'")" = ctx.embedding ] \
    || fail "ctx.memories.embedding is not ctx.embedding after the upgrade"
  [ "$(psql -d indexed -tAc "SELECT md5(string_agg(id || ':' || embedding::real[]::text, ',' ORDER BY id, version)) FROM ctx.memories")" = "$stored" ] \
    || fail "stored embeddings changed in the conversion to ctx.embedding"
  indexdef=$(psql -d indexed -tAc "SELECT pg_get_indexdef('ctx.memories_hnsw_3'::regclass)")
  [[ $indexdef == *"((embedding)::vector(3)) vector_l2_ops"*"ctx.embedding_dims(embedding) = 3"* ]] \
    || fail "the HNSW index was not rebuilt over ctx.embedding: $indexdef"
  # recall through the rebuilt index finds what an exact ranking finds
  [ "$(psql -d indexed -tAc "SET ctxstore.exact_recall_max_candidates = 1" \
          -c "SELECT string_agg(content, ',' ORDER BY similarity DESC, content)
                FROM ctx.recall('{docs}', ARRAY[0.5, 0.5, 0.5]::real[], k => 5, weights => '{\"similarity\": 1}', metric => 'l2')" | tail -n 1)" \
       = "$(psql -d indexed -tAc "SELECT string_agg(content, ',' ORDER BY s DESC, content) FROM (
              SELECT content, ctx.embedding_similarity(embedding, '[0.5,0.5,0.5]', 'l2') AS s FROM ctx.memories
               WHERE valid_to IS NULL ORDER BY s DESC LIMIT 5) t")" ] \
    || fail "recall through the rebuilt HNSW index differs from an exact ranking"
  # pgvector's casts are not the extension's: dropping pgvector leaves ctxstore and its data
  [ "$(psql -d indexed -tAc "BEGIN" -c "SET client_min_messages = warning" -c "DROP EXTENSION vector CASCADE" \
          -c "SELECT count(*) FROM ctx.memories" -c "ROLLBACK" | grep -E '^[0-9]+$')" = 300 ] \
    || fail "DROP EXTENSION vector CASCADE took ctxstore's memories with it after the upgrade"
  psql -d postgres -c "DROP DATABASE indexed"
fi
# a role given access under the release: the release's tables keep working; the new ones once
# ctx.grant_access runs again (as the README's upgrade notes say; grants made by an extension
# script would be recorded as the extension's initial privileges, which pg_dump leaves out)
psql -d postgres -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS upgrade_app" \
  -c "CREATE DATABASE granted" -c "CREATE ROLE upgrade_app"
psql -d granted -c "CREATE EXTENSION ctxstore VERSION '$release'"
psql -d granted -c "SELECT ctx.grant_access('upgrade_app')" >/dev/null
psql -d granted -c "ALTER EXTENSION ctxstore UPDATE"
[ "$(psql -d granted -tAc "SELECT has_table_privilege('upgrade_app', 'ctx.contexts', 'INSERT')")" = t ] \
  || fail "a role granted access under $release lost it across the upgrade"
psql -d granted -c "SELECT ctx.grant_access('upgrade_app')" >/dev/null
[ "$(psql -d granted -tAc "SELECT has_table_privilege('upgrade_app', 'ctx.checkpoints', 'INSERT')
                                  AND has_table_privilege('upgrade_app', 'ctx.llm_cache', 'DELETE')")" = t ] \
  || fail "ctx.grant_access after the upgrade does not grant the tables $current added"
psql -d postgres -c "DROP DATABASE granted" -c "DROP ROLE upgrade_app"
echo "upgrade ($server): $release -> $current keeps $(wc -l < "$work/before.txt") snapshot lines identical;" \
     "upgraded schema equals a fresh install ($(wc -l < "$work/fresh-schema.txt") definitions compared)"
result 1 0 0 "upgrade paths: $release -> $current"
