-- Metrics: counters and latency histograms of this session's calls (the regression cluster
-- does not preload ctxstore, so they are per session and exact here; tests/observability.sh
-- checks the server-wide ones).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off
\set VERBOSITY default

SELECT ctx.create_context('metrics') AS c \gset
SELECT count(*) FROM ctx.append_many(:'c', '[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]');
SELECT ctx.append(:'c', 'user', 'c');
SELECT count(*) FROM ctx.window(:'c', 2);
SELECT count(*) FROM ctx.token_window(:'c', 1000);
SELECT count(*) FROM ctx.messages(:'c');
SELECT ctx.append(:'c', 'nobody', 'x');
SELECT ctx.put('{metrics}', 'k', '1'), ctx.patch('{metrics}', 'k', '{"a": 1}');
SELECT ctx.put('{metrics}', 'k', '2', expected_version => 7);
-- the notice says these count this session only
SELECT name, labels, value FROM ctx.metrics
 WHERE value > 0 AND name NOT LIKE '%duration%' ORDER BY name, labels::text;
SELECT labels ->> 'call' AS call, value AS calls FROM ctx.metrics
 WHERE name = 'ctxstore_call_duration_seconds_count' ORDER BY 1;
-- buckets are cumulative and end with +Inf = count
SELECT bool_and(ok) AS cumulative FROM (
  SELECT value >= lag(value, 1, 0::float8) OVER (PARTITION BY labels ->> 'call' ORDER BY nullif(labels ->> 'le', '+Inf')::float8 NULLS LAST) AS ok
    FROM ctx.metrics WHERE name = 'ctxstore_call_duration_seconds_bucket') b;
SELECT count(*) AS lines, count(*) FILTER (WHERE line LIKE '# TYPE %') AS families
  FROM regexp_split_to_table(rtrim(ctx.metrics_prometheus(), E'\n'), E'\n') AS line;
SELECT line FROM regexp_split_to_table(ctx.metrics_prometheus(), E'\n') AS line
 WHERE line LIKE '%messages_appended%' OR line LIKE 'ctxstore_call_duration_seconds_bucket{call="append",le="+Inf"}%';
-- turned off (superuser setting): calls are no longer counted
SET ctxstore.metrics = off;
SELECT ctx.append(:'c', 'user', 'uncounted');
RESET ctxstore.metrics;
SELECT value FROM ctx.metrics WHERE name = 'ctxstore_messages_appended_total';
SELECT ctx.reset_metrics();
SELECT sum(value) AS after_reset FROM ctx.metrics WHERE name <> 'ctxstore_metrics_shared';
SELECT ctx.delete_context(:'c');
SELECT ctx.delete_key('{metrics}', 'k');

-- Trace ids: the request's traceparent (setting or sqlcommenter comment in application_name)
-- lands on the rows it writes and comes back from ctx.history.
SET ctxstore.traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
SELECT ctx.create_context('traced') AS t \gset
SELECT ctx.append(:'t', 'user', 'traced');
RESET ctxstore.traceparent;
-- (application_name keeps 63 bytes: the trace id survives, the span id is cut)
SET client_min_messages = warning;
SET application_name = 'agent /*traceparent=''00-1bf7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01''*/';
RESET client_min_messages;
SELECT ctx.append(:'t', 'assistant', 'traced by comment');
RESET application_name;
SELECT ctx.append(:'t', 'user', 'untraced');
SELECT seq, role, trace_id FROM ctx.history(:'t');
SELECT ctx.delete_context(:'t');
