//! A YAML document as a tree of nodes that remember where they stand in the source.
//!
//! serde stops at the first error and forgets positions; validation here wants every error at once,
//! each with its line and column. So the parser's events (serde-saphyr's own parser, granit) are
//! folded into [`Node`]s, and typed decoding walks the tree itself (see `decode.rs`).
//!
//! Scalars keep their source text and style. Whether `on` is a boolean or a string is decided by
//! the consumer that knows the expected type, never here: a ConfigMap value `on` stays `"on"`.

use std::collections::{BTreeMap, HashMap};

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

/// A position in a source file: 1-based line, 1-based column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar with its text after escape processing. `quoted` is true for any non-plain style,
    /// which YAML always reads as a string.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in source order; keys are nodes so errors can point at them.
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error, or a structure this product refuses (duplicate keys, complex keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    /// What the node is, in words, for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Scalar { text, quoted } => match plain_kind(text, *quoted) {
                PlainKind::Null => "null".to_string(),
                PlainKind::Bool(_) => format!("boolean `{text}`"),
                PlainKind::Int(_) | PlainKind::Float(_) => format!("number `{text}`"),
                PlainKind::String => {
                    let shown: String = text.chars().take(40).collect();
                    let cut = if shown.len() < text.len() { "…" } else { "" };
                    format!("string {:?}", format!("{shown}{cut}"))
                }
            },
            Value::Seq(_) => "a list".to_string(),
            Value::Map(_) => "a mapping".to_string(),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, quoted } if plain_kind(text, *quoted) == PlainKind::Null)
    }

    pub fn scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value at `key` of a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Converts to JSON with the YAML 1.2 core schema (what Kubernetes' own YAML reader resolves
    /// plain scalars to, apart from 1.1 spellings like `yes`, which stay strings here).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Scalar { text, quoted } => match plain_kind(text, *quoted) {
                PlainKind::Null => J::Null,
                PlainKind::Bool(b) => J::Bool(b),
                PlainKind::Int(i) => J::from(i),
                PlainKind::Float(f) => serde_json::Number::from_f64(f)
                    .map(J::Number)
                    .unwrap_or_else(|| J::String(text.clone())),
                PlainKind::String => J::String(text.clone()),
            },
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar().unwrap_or_default().to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlainKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String,
}

/// How the YAML 1.2 core schema reads a scalar.
pub fn plain_kind(text: &str, quoted: bool) -> PlainKind {
    if quoted {
        return PlainKind::String;
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return PlainKind::Null,
        "true" | "True" | "TRUE" => return PlainKind::Bool(true),
        "false" | "False" | "FALSE" => return PlainKind::Bool(false),
        _ => {}
    }
    if let Some(i) = parse_int(text) {
        return PlainKind::Int(i);
    }
    let float_like = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if float_like && let Ok(f) = text.parse::<f64>() {
        return PlainKind::Float(f);
    }
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" => PlainKind::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => PlainKind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => PlainKind::Float(f64::NAN),
        _ => PlainKind::String,
    }
}

fn parse_int(text: &str) -> Option<i64> {
    let (neg, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -value } else { value })
}

/// Every field below `node` by dotted path (`approval.reviewers`, `secrets[1]`), with the
/// position of its value when that is a scalar, of its key otherwise (a block list would start on
/// the next line), so checks that run after decoding point at what they are about.
pub fn positions(node: &Node) -> BTreeMap<String, Pos> {
    fn walk(node: &Node, path: &str, out: &mut BTreeMap<String, Pos>) {
        match &node.value {
            Value::Map(entries) => {
                for (key, value) in entries {
                    let name = key.scalar().unwrap_or_default();
                    let child = if path.is_empty() {
                        name.to_string()
                    } else {
                        format!("{path}.{name}")
                    };
                    // A scalar's problem is its value; a list's or mapping's is the field.
                    let pos = if matches!(value.value, Value::Scalar { .. }) {
                        value.pos
                    } else {
                        key.pos
                    };
                    out.insert(child.clone(), pos);
                    walk(value, &child, out);
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let child = format!("{path}[{i}]");
                    out.insert(child.clone(), item.pos);
                    walk(item, &child, out);
                }
            }
            Value::Scalar { .. } => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(node, "", &mut out);
    out
}

/// Parses every document of a YAML stream. Empty documents (`---` with nothing after) are kept as
/// `None` so callers can skip them while still counting documents.
pub fn parse_documents(source: &str) -> Result<Vec<Option<Node>>, SyntaxError> {
    parse_stream(source).map(|(docs, _)| docs)
}

/// The documents and where each one starts (its `---`, when it has one).
fn parse_stream(source: &str) -> Result<(Vec<Option<Node>>, Vec<Pos>), SyntaxError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        let pos = Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        };
        builder.event(event, pos)?;
    }
    Ok((builder.documents, builder.starts))
}

/// Parses a stream that must hold exactly one document (a config file).
pub fn parse_single(source: &str) -> Result<Option<Node>, SyntaxError> {
    let (mut docs, starts) = parse_stream(source)?;
    match docs.len() {
        0 => Ok(None),
        1 => Ok(docs.pop().flatten()),
        _ => Err(SyntaxError {
            pos: starts.get(1).copied().unwrap_or(Pos { line: 1, col: 1 }),
            message: format!(
                "expected a single YAML document, found {} (remove the extra `---`)",
                docs.len()
            ),
        }),
    }
}

enum Frame {
    Seq(Node),
    Map {
        node: Node,
        pending_key: Option<Node>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Frame, usize)>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Option<Node>>,
    starts: Vec<Pos>,
    in_document: bool,
    root: Option<Node>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, pos: Pos) -> Result<(), SyntaxError> {
        match event {
            Event::DocumentStart(..) => {
                self.starts.push(pos);
                self.in_document = true;
                self.root = None;
                self.anchors.clear();
            }
            Event::DocumentEnd => {
                if self.in_document {
                    self.documents.push(self.root.take());
                }
                self.in_document = false;
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                let node = Node {
                    value: Value::Scalar {
                        text: text.into_owned(),
                        quoted,
                    },
                    pos,
                };
                self.push(node, anchor)?;
            }
            Event::SequenceStart(_, anchor, _) => self.stack.push((
                Frame::Seq(Node {
                    value: Value::Seq(Vec::new()),
                    pos,
                }),
                anchor,
            )),
            Event::MappingStart(_, anchor, _) => self.stack.push((
                Frame::Map {
                    node: Node {
                        value: Value::Map(Vec::new()),
                        pos,
                    },
                    pending_key: None,
                },
                anchor,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((frame, anchor)) = self.stack.pop() {
                    let node = match frame {
                        Frame::Seq(node) | Frame::Map { node, .. } => node,
                    };
                    self.push(node, anchor)?;
                }
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                    pos,
                    message: "alias refers to an unknown anchor".to_string(),
                })?;
                self.push(node, 0)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn push(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((Frame::Seq(seq), _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some((
                Frame::Map {
                    node: map,
                    pending_key,
                },
                _,
            )) => match pending_key.take() {
                None => {
                    if node.scalar().is_none() {
                        return Err(SyntaxError {
                            pos: node.pos,
                            message: "mapping keys must be plain strings".to_string(),
                        });
                    }
                    *pending_key = Some(node);
                }
                Some(key) => {
                    if let Value::Map(entries) = &mut map.value {
                        if let Some((first, _)) =
                            entries.iter().find(|(k, _)| k.scalar() == key.scalar())
                        {
                            return Err(SyntaxError {
                                pos: key.pos,
                                message: format!(
                                    "duplicate key `{}` (first defined at line {})",
                                    key.scalar().unwrap_or_default(),
                                    first.pos.line
                                ),
                            });
                        }
                        entries.push((key, node));
                    }
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let doc = parse_single("a: 1\nb:\n  c: x\n").unwrap().unwrap();
        let c = doc.get("b").unwrap().get("c").unwrap();
        assert_eq!(c.pos, Pos { line: 3, col: 6 });
    }

    #[test]
    fn yaml_11_booleans_stay_strings() {
        let doc = parse_single("a: on\nb: no\nc: yes\nd: true\ne: '1'\nf: 1.5")
            .unwrap()
            .unwrap();
        let json = doc.to_json();
        assert_eq!(json["a"], "on");
        assert_eq!(json["b"], "no");
        assert_eq!(json["c"], "yes");
        assert_eq!(json["d"], true);
        assert_eq!(json["e"], "1");
        assert_eq!(json["f"], 1.5);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse_single("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos.line, 3);
        assert!(err.message.contains("duplicate key `a`"), "{}", err.message);
    }

    #[test]
    fn multi_document_streams_keep_empty_documents() {
        let docs = parse_documents("a: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[1].as_ref().is_none_or(Node::is_null));
        assert_eq!(docs[2].as_ref().unwrap().pos.line, 4);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse_single("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1);
        assert!(!err.message.is_empty());
    }

    #[test]
    fn anchors_and_aliases_resolve() {
        let doc = parse_single("base: &r {cpu: 50m}\nother: *r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            doc.get("other").unwrap().get("cpu").unwrap().scalar(),
            Some("50m")
        );
    }
}
