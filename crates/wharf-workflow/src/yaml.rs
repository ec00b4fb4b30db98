//! The little YAML a workflow needs, written in block style, in the order it was built.
//!
//! Not a serializer for arbitrary data: keys are trusted (job ids and environment names are
//! checked before they get here), values are strings, booleans, small integers, literal
//! blocks (`run: |`), sequences and mappings, and comments can sit before an entry. A string
//! is written plain when YAML would read it back as the same string, else double-quoted.

/// A YAML value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Str(String),
    /// A literal block (`|`): shell scripts, kept line by line.
    Block(String),
    Bool(bool),
    Int(u64),
    /// No value (`pull_request:`).
    Null,
    Seq(Vec<Node>),
    Map(Map),
    /// A comment line, then the value: for sequence items (mappings comment their keys).
    Commented(String, Box<Node>),
}

impl From<&str> for Node {
    fn from(s: &str) -> Self {
        Node::Str(s.to_owned())
    }
}

impl From<String> for Node {
    fn from(s: String) -> Self {
        Node::Str(s)
    }
}

impl From<bool> for Node {
    fn from(b: bool) -> Self {
        Node::Bool(b)
    }
}

impl From<u64> for Node {
    fn from(n: u64) -> Self {
        Node::Int(n)
    }
}

impl From<Map> for Node {
    fn from(m: Map) -> Self {
        Node::Map(m)
    }
}

impl From<Vec<Node>> for Node {
    fn from(items: Vec<Node>) -> Self {
        Node::Seq(items)
    }
}

/// A mapping whose keys keep the order they were added in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Map(Vec<Entry>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Pair(String, Node),
    Comment(String),
}

impl Map {
    pub fn new() -> Self {
        Map::default()
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<Node>) -> Self {
        self.0.push(Entry::Pair(key.into(), value.into()));
        self
    }

    /// `with` when there is a value.
    pub fn with_some(self, key: &str, value: Option<impl Into<Node>>) -> Self {
        match value {
            Some(value) => self.with(key, value),
            None => self,
        }
    }

    /// `other`'s entries after these.
    pub fn append(mut self, other: Map) -> Self {
        self.0.extend(other.0);
        self
    }

    /// A `# text` line before the next entry.
    pub fn comment(mut self, text: impl Into<String>) -> Self {
        self.0.push(Entry::Comment(text.into()));
        self
    }

    /// No key (comments alone do not count).
    pub fn is_empty(&self) -> bool {
        !self.0.iter().any(|e| matches!(e, Entry::Pair(..)))
    }
}

/// The document: `map` at the top level, each line ending in `\n`.
pub fn to_string(map: &Map) -> String {
    let mut out = String::new();
    write_map(map, 0, &mut out);
    out
}

fn write_map(map: &Map, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for entry in &map.0 {
        match entry {
            Entry::Comment(text) => comment(text, &pad, out),
            Entry::Pair(key, value) => {
                out.push_str(&pad);
                out.push_str(key);
                out.push(':');
                write_value(value, indent, out);
            }
        }
    }
}

/// Writes what follows `key:` (or `-`), `indent` being the key's own indentation.
fn write_value(value: &Node, indent: usize, out: &mut String) {
    match value {
        Node::Seq(items) if items.is_empty() => out.push_str(" []\n"),
        Node::Map(map) if map.is_empty() => out.push_str(" {}\n"),
        Node::Seq(items) => {
            out.push('\n');
            write_seq(items, indent + 2, out);
        }
        Node::Map(map) => {
            out.push('\n');
            write_map(map, indent + 2, out);
        }
        Node::Block(text) => {
            out.push_str(" |\n");
            let pad = " ".repeat(indent + 2);
            for line in text.lines() {
                if !line.is_empty() {
                    out.push_str(&pad);
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        Node::Commented(_, inner) => write_value(inner, indent, out),
        Node::Null => out.push('\n'),
        scalar => {
            out.push(' ');
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

fn write_seq(items: &[Node], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        let item = match item {
            Node::Commented(text, inner) => {
                comment(text, &pad, out);
                inner.as_ref()
            }
            item => item,
        };
        match item {
            // The mapping's first key goes on the dash line: `- uses: ...`.
            Node::Map(map) if !map.is_empty() => {
                let mut body = String::new();
                write_map(map, indent + 2, &mut body);
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&body[indent + 2..]);
            }
            Node::Seq(_) | Node::Map(_) | Node::Block(_) => {
                out.push_str(&pad);
                out.push('-');
                write_value(item, indent, out);
            }
            scalar => {
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&scalar_text(scalar));
                out.push('\n');
            }
        }
    }
}

fn comment(text: &str, pad: &str, out: &mut String) {
    for line in text.lines() {
        out.push_str(pad);
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
}

fn scalar_text(node: &Node) -> String {
    match node {
        Node::Str(s) => string(s),
        Node::Bool(b) => b.to_string(),
        Node::Int(n) => n.to_string(),
        Node::Null => "null".to_owned(),
        other => unreachable!("not a scalar: {other:?}"),
    }
}

/// `s` plain when YAML reads it back as this string, else double-quoted (as a JSON string,
/// which YAML reads the same way).
pub fn string(s: &str) -> String {
    if is_plain(s) {
        s.to_owned()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

/// Whether `s` can be a plain scalar in block context: no leading indicator, no `: ` or
/// ` #` inside, no surrounding space, and nothing a YAML 1.1 or 1.2 reader would take for
/// a boolean, null or number (GitHub and the schema validators disagree on the version).
fn is_plain(s: &str) -> bool {
    const INDICATORS: &str = "-?:,[]{}#&*!|>'\"%@`";
    const WORDS: [&str; 10] = [
        "y", "n", "yes", "no", "true", "false", "on", "off", "null", "~",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    let numeric = first.is_ascii_digit() || first == '.' || first == '+';
    !INDICATORS.contains(first)
        && !numeric
        && !first.is_whitespace()
        && !s.ends_with(char::is_whitespace)
        && !s.ends_with(':')
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.chars().any(char::is_control)
        && !WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_yaml_would_retype_or_misread_are_quoted() {
        for plain in [
            "ubuntu-latest",
            "v*",
            "${{ runner.os }}",
            "always() && hashFiles('a') != ''",
            "cargo xtask ci",
            "actions/checkout@v4",
            "say \"hi\"",
        ] {
            assert_eq!(string(plain), plain);
        }
        for (raw, quoted) in [
            ("", r#""""#),
            ("true", r#""true""#),
            ("On", r#""On""#),
            ("1.95.0", r#""1.95.0""#),
            ("a: b", r#""a: b""#),
            ("a #b", r#""a #b""#),
            ("*alias", r#""*alias""#),
            ("-x", r#""-x""#),
            (" x", r#"" x""#),
            ("x:", r#""x:""#),
            ("a\nb", r#""a\nb""#),
            ("\"hi\" there", r#""\"hi\" there""#),
        ] {
            assert_eq!(string(raw), quoted, "{raw:?}");
        }
    }

    #[test]
    fn block_style_with_maps_in_sequences_comments_and_literal_blocks() {
        let doc = Map::new()
            .comment("top")
            .with("name", "ci")
            .with("empty", Vec::<Node>::new())
            .with(
                "steps",
                vec![
                    Node::Commented(
                        "why".into(),
                        Box::new(
                            Map::new()
                                .with("uses", "actions/checkout@v4")
                                .with("with", Map::new().with("fetch-depth", 0u64))
                                .into(),
                        ),
                    ),
                    Map::new()
                        .with("run", Node::Block("a\n\nb\n".into()))
                        .with("if", "true")
                        .into(),
                    Node::Str("x".into()),
                ],
            )
            .with("fail-fast", false);
        let expected = "\
# top
name: ci
empty: []
steps:
  # why
  - uses: actions/checkout@v4
    with:
      fetch-depth: 0
  - run: |
      a

      b
    if: \"true\"
  - x
fail-fast: false
";
        assert_eq!(to_string(&doc), expected);
    }
}
