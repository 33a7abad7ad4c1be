//! OTLP/HTTP export: metric snapshots and slow-call spans as OTLP protobuf requests (the
//! opentelemetry-proto types), and a minimal blocking HTTP/1.1 POST with timeouts. Used only by
//! the background worker: a slow or absent receiver never reaches a backend, and nothing is
//! queued (each export sends the current cumulative values; spans not delivered are dropped).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};

use crate::core::metrics::{
    Snapshot, BUCKETS_US, CALLS, COUNTERS, DURATION, ERRORS, ERROR_CLASSES,
};
use crate::core::trace;

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn resource(attributes: &[(&str, String)]) -> Resource {
    Resource {
        attributes: attributes.iter().map(|(k, v)| attribute(k, v)).collect(),
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "ctxstore".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..Default::default()
    }
}

fn cumulative_sum(name: &str, help: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_string(),
        description: help.to_string(),
        unit: "1".to_string(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

/// The snapshot as cumulative OTLP metrics (counters as monotonic sums, latencies as explicit
/// bucket histograms in seconds), counted since `start_ns`. OTLP names drop the Prometheus
/// `_total` suffix; the exporter on the other side adds it back.
pub fn metrics_request(
    snapshot: &Snapshot,
    start_ns: u64,
    now_ns: u64,
    attributes: &[(&str, String)],
) -> ExportMetricsServiceRequest {
    let point = |labels: Vec<KeyValue>, value: u64| NumberDataPoint {
        attributes: labels,
        start_time_unix_nano: start_ns,
        time_unix_nano: now_ns,
        value: Some(number_data_point::Value::AsInt(value as i64)),
        ..Default::default()
    };
    let mut metrics: Vec<Metric> = Vec::new();
    for (family, label, counter) in COUNTERS {
        let name = family.name.trim_end_matches("_total");
        let labels = label.map(|(k, v)| attribute(k, v)).into_iter().collect();
        let value = point(labels, snapshot.counter(counter));
        match metrics.last_mut() {
            Some(Metric {
                name: last,
                data: Some(metric::Data::Sum(sum)),
                ..
            }) if last == name => sum.data_points.push(value),
            _ => metrics.push(cumulative_sum(name, family.help, vec![value])),
        }
    }
    metrics.push(cumulative_sum(
        ERRORS.name.trim_end_matches("_total"),
        ERRORS.help,
        ERROR_CLASSES
            .iter()
            .zip(snapshot.errors)
            .map(|(class, n)| point(vec![attribute("class", class)], n))
            .collect(),
    ));
    let bounds: Vec<f64> = BUCKETS_US.iter().map(|&us| us as f64 / 1e6).collect();
    metrics.push(Metric {
        name: DURATION.name.to_string(),
        description: DURATION.help.to_string(),
        unit: "s".to_string(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: CALLS
                .iter()
                .map(|(name, call)| {
                    let h = &snapshot.durations[*call as usize];
                    let mut counts = h.buckets.to_vec();
                    counts.push(h.count.saturating_sub(h.buckets.iter().sum()));
                    HistogramDataPoint {
                        attributes: vec![attribute("call", name)],
                        start_time_unix_nano: start_ns,
                        time_unix_nano: now_ns,
                        count: h.count,
                        sum: Some(h.sum_us as f64 / 1e6),
                        bucket_counts: counts,
                        explicit_bounds: bounds.clone(),
                        ..Default::default()
                    }
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    });
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource(attributes)),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Slow calls as server spans, children of the client's span when it sent a traceparent.
pub fn traces_request(
    spans: &[trace::Span],
    attributes: &[(&str, String)],
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(attributes)),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans: spans
                    .iter()
                    .map(|s| Span {
                        trace_id: s.trace_id.to_vec(),
                        span_id: s.span_id.to_vec(),
                        parent_span_id: if s.parent_span_id == [0; 8] {
                            Vec::new()
                        } else {
                            s.parent_span_id.to_vec()
                        },
                        name: s.name(),
                        kind: span::SpanKind::Server as i32,
                        start_time_unix_nano: s.start_unix_ns,
                        end_time_unix_nano: s.end_unix_ns,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// An `http://host:port[/prefix]` endpoint (OTLP/HTTP; TLS is left to a local collector).
#[derive(Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub prefix: String,
}

pub fn parse_endpoint(url: &str) -> Result<Endpoint, String> {
    let rest = url.trim().strip_prefix("http://").ok_or_else(|| {
        format!("\"{url}\" is not an http:// URL (send to a local collector for TLS)")
    })?;
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (host, port) = match authority.strip_prefix('[') {
        // [v6 address]:port
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("\"{url}\": unclosed [ in the host"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("\"{url}\": bad port \"{p}\""))?,
        None => 80,
    };
    if host.is_empty() {
        return Err(format!("\"{url}\" has no host"));
    }
    Ok(Endpoint {
        host: host.to_string(),
        port,
        prefix: prefix.to_string(),
    })
}

/// POSTs a protobuf body to `path` under the endpoint; returns the HTTP status. Every step
/// is bounded by `timeout`.
pub fn post(
    endpoint: &Endpoint,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<u16, String> {
    // every resolved address in turn: "localhost" may resolve to ::1 first while the
    // collector listens on 127.0.0.1
    let addrs: Vec<_> = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", endpoint.host))?
        .collect();
    let mut last_error = format!("no address for {}", endpoint.host);
    let mut connected = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                connected = Some((stream, addr));
                break;
            }
            Err(e) => last_error = format!("connect to {addr}: {e}"),
        }
    }
    let (mut stream, addr) = connected.ok_or(last_error)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        endpoint.prefix,
        if endpoint.host.contains(':') {
            format!("[{}]", endpoint.host)
        } else {
            endpoint.host.clone()
        },
        endpoint.port,
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .map_err(|e| format!("send to {addr}: {e}"))?;
    // the status line is all we need; read a bounded prefix of the response
    let mut response = [0u8; 512];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut response[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(format!("read from {addr}: {e}")),
        }
    }
    status_code(&response[..read]).ok_or_else(|| format!("{addr} answered without an HTTP status"))
}

fn status_code(response: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(response.get(..12)?).ok()?;
    line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::{Block, Call, Counter};
    use prost::Message;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:4318").unwrap(),
            Endpoint {
                host: "127.0.0.1".into(),
                port: 4318,
                prefix: String::new()
            }
        );
        assert_eq!(
            parse_endpoint("http://collector/otlp/").unwrap(),
            Endpoint {
                host: "collector".into(),
                port: 80,
                prefix: "/otlp".into()
            }
        );
        assert_eq!(parse_endpoint("http://[::1]:4318").unwrap().host, "::1");
        assert!(parse_endpoint("https://x:4318").is_err());
        assert!(parse_endpoint("http://:4318").is_err());
        assert!(parse_endpoint("http://x:port").is_err());
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"garbage"), None);
    }

    #[test]
    fn metrics_round_trip_through_protobuf() {
        let block = Block::new();
        block.add(Counter::MessagesAppended, 5);
        block.add(Counter::RecallsExact, 2);
        block.observe(Call::Append, 300);
        block.observe(Call::Append, 10_000_000);
        block.error("22023");
        let request = metrics_request(
            &block.snapshot(),
            1,
            2,
            &[("service.name", "ctxstore".into())],
        );
        let decoded =
            ExportMetricsServiceRequest::decode(request.encode_to_vec().as_slice()).unwrap();
        let metrics = &decoded.resource_metrics[0].scope_metrics[0].metrics;
        let find = |name: &str| metrics.iter().find(|m| m.name == name).unwrap();
        let Some(metric::Data::Sum(appended)) = &find("ctxstore_messages_appended").data else {
            panic!("not a sum")
        };
        assert_eq!(
            appended.data_points[0].value,
            Some(number_data_point::Value::AsInt(5))
        );
        let Some(metric::Data::Sum(recalls)) = &find("ctxstore_recalls").data else {
            panic!()
        };
        assert_eq!(recalls.data_points.len(), 3);
        let Some(metric::Data::Histogram(h)) = &find("ctxstore_call_duration_seconds").data else {
            panic!()
        };
        let append = &h.data_points[0];
        assert_eq!(append.count, 2);
        assert_eq!(append.bucket_counts.len(), append.explicit_bounds.len() + 1);
        assert_eq!(append.bucket_counts.iter().sum::<u64>(), 2);
        assert_eq!(*append.bucket_counts.last().unwrap(), 1);
        // one metric per family: the counters of a family are data points of one sum
        let names: std::collections::HashSet<&str> =
            metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names.len(), metrics.len());
    }

    #[test]
    fn spans_keep_their_parent() {
        let parent =
            trace::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let spans = [
            trace::Span::new(Call::Recall, parent, &[9; 24], 2_000_000, 1_000),
            trace::Span::new(Call::Append, None, &[9; 24], 2_000_000, 1_000),
        ];
        let request = traces_request(&spans, &[]);
        let out = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(out[0].name, "ctxstore.recall");
        assert_eq!(out[0].parent_span_id, parent.unwrap().1.to_vec());
        assert!(out[1].parent_span_id.is_empty());
        assert_eq!(
            out[1].end_time_unix_nano - out[1].start_time_unix_nano,
            1_000_000
        );
    }
}
