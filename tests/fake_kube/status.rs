//! Errors as the apiserver writes them: a `metav1.Status` body with the HTTP code, reason,
//! message and details worded like `k8s.io/apimachinery/pkg/api/errors`.

use serde_json::{Value, json};

use super::resources::ResourceType;

/// An error response: the HTTP code and the Status object sent as its body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub status: Value,
    /// `Retry-After`, in seconds (429 and some 5xx).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>, details: Value) -> ApiError {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message.into(),
            "reason": reason,
            "code": code,
        });
        if !details.is_null() {
            status["details"] = details;
        }
        ApiError {
            code,
            status,
            retry_after: None,
        }
    }

    /// `pods "web-1" not found`, `deployments.apps "web" not found`.
    pub fn not_found(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified()),
            json!({ "name": name, "group": rt.group, "kind": rt.plural }),
        )
    }

    pub fn namespace_not_found(ns: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("namespaces \"{ns}\" not found"),
            json!({ "name": ns, "kind": "namespaces" }),
        )
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified()),
            json!({ "name": name, "group": rt.group, "kind": rt.plural }),
        )
    }

    /// The optimistic-concurrency conflict of an update carrying a stale `resourceVersion`.
    pub fn conflict(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                rt.qualified()
            ),
            json!({ "name": name, "group": rt.group, "kind": rt.plural }),
        )
    }

    /// 422 with one cause per field error, like `errors.NewInvalid`.
    pub fn invalid(rt: &ResourceType, name: &str, errors: &[FieldError]) -> ApiError {
        let texts: Vec<String> = errors.iter().map(FieldError::text).collect();
        let joined = if texts.len() == 1 {
            texts[0].clone()
        } else {
            format!("[{}]", texts.join(", "))
        };
        let group_kind = if rt.group.is_empty() {
            rt.kind.to_string()
        } else {
            format!("{}.{}", rt.kind, rt.group)
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({ "reason": e.reason, "message": e.message(), "field": e.field }))
            .collect();
        ApiError::new(
            422,
            "Invalid",
            format!("{group_kind} \"{name}\" is invalid: {joined}"),
            json!({ "name": name, "group": rt.group, "kind": rt.kind, "causes": causes }),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message, Value::Null)
    }

    /// 422 without field causes, as a JSON patch that does not apply is answered.
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(422, "Invalid", message, Value::Null)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message, Value::Null)
    }

    /// The watch cache's answer to a `resourceVersion` it no longer holds.
    pub fn expired(requested: u64, oldest: u64) -> ApiError {
        ApiError::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
            Value::Null,
        )
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized", Value::Null)
    }

    pub fn route_not_found() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
            json!({ "causes": [{ "reason": "UnexpectedServerResponse", "message": "404 page not found" }] }),
        )
    }

    pub fn method_not_allowed(method: &str) -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
            Value::Null,
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media \
                 types include: application/json-patch+json, application/merge-patch+json, \
                 application/apply-patch+yaml, application/strategic-merge-patch+json"
            ),
            Value::Null,
        )
    }

    pub fn too_many_requests(retry_after: u64) -> ApiError {
        let mut e = ApiError::new(
            429,
            "TooManyRequests",
            "The server has received too many requests and has asked us to try again later",
            json!({ "retryAfterSeconds": retry_after }),
        );
        e.retry_after = Some(retry_after);
        e
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
            json!({ "causes": [{ "message": "injected by the fake apiserver" }] }),
        )
    }
}

/// One `field.Error`: where, what kind, and the offending value or detail.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: String,
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueForbidden`, ...
    pub reason: &'static str,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueRequired",
            detail: detail.into(),
        }
    }

    /// `Invalid value: <value>: <detail>`.
    pub fn invalid(
        field: impl Into<String>,
        value: &Value,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueInvalid",
            detail: format!("{}: {}", go_value(value), detail.into()),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueForbidden",
            detail: detail.into(),
        }
    }

    pub fn unsupported(field: impl Into<String>, value: &Value, supported: &[&str]) -> FieldError {
        let quoted: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        FieldError {
            field: field.into(),
            reason: "FieldValueNotSupported",
            detail: format!(
                "{}: supported values: {}",
                go_value(value),
                quoted.join(", ")
            ),
        }
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueDuplicate",
            detail: go_value(value),
        }
    }

    fn message(&self) -> String {
        let kind = match self.reason {
            "FieldValueRequired" => "Required value",
            "FieldValueDuplicate" => "Duplicate value",
            "FieldValueForbidden" => "Forbidden",
            "FieldValueNotSupported" => "Unsupported value",
            _ => "Invalid value",
        };
        if self.detail.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}: {}", self.detail)
        }
    }

    fn text(&self) -> String {
        format!("{}: {}", self.field, self.message())
    }
}

/// A value printed the way Go's `%#v` shows it in field errors, near enough: strings quoted,
/// maps as `map[string]string{...}`.
fn go_value(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("\"{k}\":{}", go_value(v)))
                .collect();
            pairs.sort();
            format!("map[string]string{{{}}}", pairs.join(", "))
        }
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}
