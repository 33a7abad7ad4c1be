#!/usr/bin/env bash
# Windows read O(window), not O(thread): ctx.token_window, ctx.window and ctx.list_messages (either
# order) on a 100-message and a
# 1,000,000-message thread touch the same number of buffers, up to the extra b-tree level of
# the bigger index (EXPLAIN (ANALYZE, BUFFERS) counts every page the call's queries touched).
# A read that scanned the thread would touch thousands of pages more.
#   window_scale.sh pg15|pg18   (after scripts/install.sh)
source "$(dirname "$0")/lib.sh"
throwaway_cluster "$1" window-scale $((56600 + ${1#pg}))
big=1000000 small=100 budget=500
psql -d postgres -c "CREATE DATABASE ctxstore_scale"
psql -d ctxstore_scale >/dev/null <<SQL
CREATE EXTENSION ctxstore;
CREATE TABLE threads AS SELECT 'small' AS name, ctx.create_context('small') AS id
                  UNION ALL SELECT 'big', ctx.create_context('big');
-- rows written directly (the audit trigger off) so a million take seconds; 10 tokens each
SELECT ctx.set_audit('messages', false);
INSERT INTO ctx.messages (context_id, seq, role, content, tokens)
SELECT t.id, g, CASE WHEN g % 2 = 0 THEN 'assistant' ELSE 'user' END, 'message number ' || g, 10
  FROM threads t, generate_series(1, CASE t.name WHEN 'big' THEN $big ELSE $small END) g;
UPDATE ctx.contexts c SET last_seq = CASE t.name WHEN 'big' THEN $big ELSE $small END
  FROM threads t WHERE c.id = t.id;
SELECT ctx.set_audit('messages', true);
VACUUM ANALYZE ctx.messages;
SQL

# buffers CALL NAME: shared buffers touched by one call (the second of two: warm caches), and
# the rows it returned
buffers() {
  local plan
  set -e
  plan=$(psql -d ctxstore_scale -tA -c "SELECT count(*) FROM threads t, $1 WHERE t.name = '$2'" \
              -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM threads t, $1 WHERE t.name = '$2'")
  local rows hit read
  rows=$(echo "$plan" | head -n1)
  hit=$(echo "$plan" | grep -Eo 'shared hit=[0-9]+' | head -n1 | grep -Eo '[0-9]+' || echo 0)
  read=$(echo "$plan" | grep -Eo 'read=[0-9]+' | head -n1 | grep -Eo '[0-9]+' || echo 0)
  echo "$rows $((hit + read))"
}
checks=0
for call in "ctx.token_window(t.id, $budget)" "ctx.window(t.id, 50)" \
            "ctx.list_messages(t.id, order_by => 'created_at', descending => true, max_rows => 50)" \
            "ctx.list_messages(t.id, order_by => 'seq', descending => true, max_rows => 50)"; do
  read -r small_rows small_pages <<<"$(buffers "$call" small)"
  read -r big_rows big_pages <<<"$(buffers "$call" big)"
  echo "window scale: ${call%%(*}: $small-message thread $small_rows rows, $small_pages buffers; $big-message thread $big_rows rows, $big_pages buffers"
  [ "$small_rows" = 50 ] && [ "$big_rows" = 50 ] || fail "${call%%(*} returned $small_rows / $big_rows rows, expected 50"
  [ "$small_pages" -gt 0 ] && [ "$big_pages" -gt 0 ] || fail "${call%%(*}: EXPLAIN reported no buffer counts"
  # one more b-tree level per index probe at most: a handful of pages, never the thread
  [ "$big_pages" -le $((small_pages + 8)) ] \
    || fail "${call%%(*} touched $big_pages buffers on the big thread, $small_pages on the small one: not O(window)"
  checks=$((checks + 1))
done
result "$checks" 0 0 "window and page reads compared on a $small- and a $big-message thread"
