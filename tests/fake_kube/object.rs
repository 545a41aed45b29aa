//! Reading and writing the parts of an object every module touches (metadata, labels, owner
//! references), the apiserver's timestamp formats, and the deterministic names and hashes the
//! controllers give what they create.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

pub fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or_default()
}

pub fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or_default()
}

pub fn resource_version(o: &Value) -> &str {
    o["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
}

pub fn generation(o: &Value) -> i64 {
    o["metadata"]["generation"].as_i64().unwrap_or(0)
}

pub fn is_deleting(o: &Value) -> bool {
    !o["metadata"]["deletionTimestamp"].is_null()
}

pub fn labels(o: &Value) -> Map<String, Value> {
    o["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

pub fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o["metadata"]["annotations"][key].as_str()
}

/// `o[a][b]...` as an object, created (replacing a non-object) on the way.
pub fn object_at<'a>(o: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut at = o;
    for key in path {
        if !at.is_object() {
            *at = json!({});
        }
        at = at
            .as_object_mut()
            .expect("made an object")
            .entry(key.to_string())
            .or_insert_with(|| json!({}));
    }
    if !at.is_object() {
        *at = json!({});
    }
    at.as_object_mut().expect("made an object")
}

pub fn set_annotation(o: &mut Value, key: &str, value: &str) {
    object_at(o, &["metadata", "annotations"]).insert(key.into(), json!(value));
}

pub fn set_label(o: &mut Value, key: &str, value: &str) {
    object_at(o, &["metadata", "labels"]).insert(key.into(), json!(value));
}

/// The uid of the owner reference marked `controller: true`.
pub fn controller_uid(o: &Value) -> Option<&str> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
}

pub fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// A scalar field as an integer; `default` when absent.
pub fn int(v: &Value, default: i64) -> i64 {
    v.as_i64().unwrap_or(default)
}

/// An int-or-percent (`maxSurge: 25%`) resolved against `total`, rounding up or down like
/// `intstr.GetScaledValueFromIntOrPercent`.
pub fn scaled(v: &Value, total: i64, round_up: bool, default: i64) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(default),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if round_up => (p * total + 99) / 100,
            Some(p) => p * total / 100,
            None => s.parse().unwrap_or(default),
        },
        _ => default,
    }
}

/// Drops object fields whose value is zero, like Go's `omitempty` on the status structs.
pub fn omit_zero(mut status: Map<String, Value>, keep: &[&str]) -> Map<String, Value> {
    status.retain(|k, v| keep.contains(&k.as_str()) || !(v == &json!(0) || v.is_null()));
    status
}

/// RFC 3339 with second precision, as `metav1.Time` serializes.
pub fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// 32-bit FNV-1a, the hash behind `pod-template-hash` and `controller-revision-hash`.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// `rand.SafeEncodeString`: no vowels (no words) and no look-alike characters.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The hash of a pod template like `controller.ComputeHash`: over the template's content with
/// map keys in a fixed order, plus the collision count, encoded with [`safe_encode`].
pub fn template_hash(template: &Value, collision_count: i64) -> String {
    let mut text = canonical(template);
    if collision_count > 0 {
        text.push_str(&collision_count.to_string());
    }
    safe_encode(&fnv32a(text.as_bytes()).to_string())
}

/// JSON with object keys sorted, so equal values print equally whatever their insertion order.
pub fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", json!(k), canonical(&m[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// Five characters for a generated name, from a counter (the real server uses random ones).
pub fn name_suffix(seed: &str, counter: u64) -> String {
    let h = fnv32a(format!("{seed}/{counter}").as_bytes());
    let mut s = safe_encode(&format!("{h:010}"));
    s.truncate(5);
    s
}

/// A uid in the UUID v4 layout, from a counter.
pub fn make_uid(counter: u64) -> String {
    let h = fnv32a(&counter.to_be_bytes());
    format!(
        "{h:08x}-{:04x}-4{:03x}-8{:03x}-{counter:012x}",
        h >> 16,
        h & 0xfff,
        (h >> 8) & 0xfff
    )
}
