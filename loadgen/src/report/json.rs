//! The report as one JSON document for scripts: the setup, then per target the same medians as the table
//! (overall and per class), its errors by MySQL code, and every round's own numbers.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Line, Setup, TargetResult};
use crate::round::Round;

/// The whole report.
pub fn render(setup: &Setup, results: &[TargetResult]) -> Value {
    let base = results.first().map_or(0.0, |r| r.overall().qps);
    let targets: Vec<Value> = results.iter().map(|r| target(setup, r, base)).collect();
    json!({
        "mode": if setup.rate.is_some() { "open" } else { "closed" },
        "rate": setup.rate,
        "connections": setup.connections,
        "seconds": setup.seconds,
        "rounds": setup.rounds,
        "grace_s": setup.grace.as_secs_f64(),
        "mix": setup.mix.name(),
        "tenants": setup.tenants,
        "zipf": setup.zipf,
        "hot_tenants": setup.hot_tenants,
        "spike": setup.spike.map(|s| json!({
            "tenant": s.tenant,
            "factor": s.factor,
            "start_s": s.start.as_secs_f64(),
            "seconds": s.length.as_secs_f64(),
        })),
        "targets": targets,
    })
}

/// One target: medians, then its rounds.
fn target(setup: &Setup, result: &TargetResult, base: f64) -> Value {
    let overall = result.overall();
    let mut out = Map::new();
    out.insert("target".into(), crate::redact(&result.url).into());
    out.insert(
        "ratio".into(),
        if base > 0.0 {
            json!(overall.qps / base)
        } else {
            Value::Null
        },
    );
    out.extend(line(&overall));
    out.insert("errors_by_code".into(), codes(&result.errors_by_code()));
    let classes: Map<String, Value> = setup
        .classes
        .iter()
        .map(|c| (c.name().to_string(), Value::Object(line(&result.class(*c)))))
        .collect();
    out.insert("classes".into(), Value::Object(classes));
    let rounds: Vec<Value> = result
        .rounds
        .iter()
        .enumerate()
        .map(|(i, r)| round(setup, i + 1, r))
        .collect();
    out.insert("rounds".into(), rounds.into());
    Value::Object(out)
}

/// One round's own numbers.
fn round(setup: &Setup, number: usize, r: &Round) -> Value {
    let all = r.overall();
    let mut out = Map::new();
    out.insert("round".into(), number.into());
    out.insert("elapsed_s".into(), r.elapsed.as_secs_f64().into());
    out.extend(line(&Line::of(r, &all)));
    out.insert("errors_by_code".into(), codes(&all.errors));
    let lag = r.send_lag.percentiles();
    out.insert(
        "send_lag_us".into(),
        json!({"p50": lag.p50, "p99": lag.p99, "max": lag.max}),
    );
    let classes: Map<String, Value> = setup
        .classes
        .iter()
        .map(|c| {
            let stats = r.class(*c);
            let mut m = line(&Line::of(r, stats));
            m.insert("errors_by_code".into(), codes(&stats.errors));
            (c.name().to_string(), Value::Object(m))
        })
        .collect();
    out.insert("classes".into(), Value::Object(classes));
    Value::Object(out)
}

/// The fields of one row.
fn line(l: &Line) -> Map<String, Value> {
    let p = &l.latency;
    let v = json!({
        "qps": l.qps,
        "p50_us": p.p50,
        "p90_us": p.p90,
        "p99_us": p.p99,
        "p999_us": p.p999,
        "max_us": p.max,
        "ok": l.ok,
        "errors": l.errors,
        "timeouts": l.timeouts,
        "unsent": l.unsent,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Errors by code, codes as keys.
fn codes(errors: &BTreeMap<u16, u64>) -> Value {
    Value::Object(
        errors
            .iter()
            .map(|(code, n)| (code.to_string(), json!(n)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW_FIELDS: [&str; 10] = [
        "qps", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "ok", "errors", "timeouts",
        "unsent",
    ];

    fn has_row_fields(v: &Value) -> bool {
        ROW_FIELDS
            .iter()
            .all(|f| v.get(f).is_some_and(Value::is_number))
    }

    #[test]
    fn json_document_has_the_setup_and_every_target() {
        let (setup, targets) = crate::report::tests::sample();
        let text = render(&setup, &targets).to_string();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["mode"], "open");
        assert_eq!(doc["rate"], 5000.0);
        assert_eq!(doc["mix"], "point");
        assert_eq!(doc["hot_tenants"], 2);
        assert_eq!(doc["spike"]["tenant"], 7);
        assert_eq!(doc["targets"].as_array().unwrap().len(), 2);
        assert_eq!(doc["targets"][0]["target"], "mysql://root@127.0.0.1:3306/a");
        assert!(!text.contains("secret"));
    }

    #[test]
    fn each_target_carries_medians_classes_error_codes_and_rounds() {
        let (setup, targets) = crate::report::tests::sample();
        let doc = render(&setup, &targets);
        let t = &doc["targets"][1];
        assert!(has_row_fields(t));
        assert!(t["ratio"].is_number());
        assert_eq!(t["errors_by_code"]["1235"], 2);
        for class in ["hot", "rest", "spike"] {
            assert!(has_row_fields(&t["classes"][class]), "{class}");
        }
        let rounds = t["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 2);
        for (i, r) in rounds.iter().enumerate() {
            assert_eq!(r["round"], i + 1);
            assert!(has_row_fields(r) && r["elapsed_s"].is_number());
            assert!(r["send_lag_us"]["p99"].is_number());
            assert_eq!(r["classes"]["spike"]["errors_by_code"]["1235"], 1);
            assert_eq!(r["classes"]["rest"]["timeouts"], 1);
        }
    }

    #[test]
    fn closed_loop_without_spike_has_null_rate_and_spike_and_no_spike_class() {
        let (mut setup, targets) = crate::report::tests::sample();
        setup.rate = None;
        setup.spike = None;
        setup.classes.pop();
        let doc = render(&setup, &targets);
        assert_eq!(doc["mode"], "closed");
        assert!(doc["rate"].is_null() && doc["spike"].is_null());
        assert!(doc["targets"][0]["classes"].get("spike").is_none());
    }
}
