//! `WWW-Authenticate` challenges (RFC 7235, section 4.1) as registries send them, and the
//! `scope` strings of the Docker token authentication spec.
//!
//! A registry answers an unauthenticated request with 401 and one or more challenges, e.g.
//! `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`.
//! [`parse`] turns the header into [`Challenge`]s; [`scope`] and [`parse_scope`] write and read
//! the `scope` a token request repeats.
//!
//! This module is pure: it never sends a request, fetches a token or chooses which challenge
//! to answer. Headers come from the network, so [`parse`] is one forward scan over the bytes
//! (no recursion, no regex, no backtracking): it never panics, and each byte is looked at a
//! bounded number of times.

use std::collections::BTreeMap;
use std::fmt;

/// The parameter name under which a `token68` (`Negotiate YIIB6w...`) is kept in
/// [`Challenge::params`].
pub const TOKEN68: &str = "token68";

/// The auth scheme of a challenge. Scheme names are case-insensitive, so `Other` holds the
/// name lowercased and equal schemes compare equal however the server spelled them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheme {
    Basic,
    Bearer,
    Other(String),
}

impl Scheme {
    fn from_name(name: &str) -> Scheme {
        if name.eq_ignore_ascii_case("basic") {
            Scheme::Basic
        } else if name.eq_ignore_ascii_case("bearer") {
            Scheme::Bearer
        } else {
            Scheme::Other(name.to_ascii_lowercase())
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheme::Basic => f.write_str("Basic"),
            Scheme::Bearer => f.write_str("Bearer"),
            Scheme::Other(name) => f.write_str(name),
        }
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: Scheme,
    /// Parameter names lowercased (they are case-insensitive); values as sent, with the quotes
    /// and backslash escapes of quoted strings removed. A token68 is kept under [`TOKEN68`].
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// Where to ask for a token (Bearer), or the protection space (Basic).
    pub fn realm(&self) -> Option<&str> {
        self.param("realm")
    }

    /// The `service` a token request must name (Docker token spec).
    pub fn service(&self) -> Option<&str> {
        self.param("service")
    }

    /// The scope(s) the registry wants, space-separated if several; see [`parse_scope`].
    pub fn scope(&self) -> Option<&str> {
        self.param("scope")
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Why a `WWW-Authenticate` header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid WWW-Authenticate header {input:?}: {problem}")]
pub struct ChallengeError {
    /// The header, cut to its first 100 characters (it comes from the network and may be huge).
    pub input: String,
    pub problem: Problem,
}

/// What is wrong with a header. Offsets (`at`) are in bytes from the start of the header;
/// `found` describes what was there instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    #[error("it is empty (a 401 response must name at least one auth scheme, such as Bearer)")]
    Empty,
    #[error("expected an auth scheme or a parameter name at byte {at}, found {found}")]
    ExpectedName { at: usize, found: String },
    #[error(
        "parameter {name:?} at byte {at} comes before any auth scheme (a challenge starts with its scheme, as in `Bearer {name}=...`)"
    )]
    ParameterBeforeScheme { at: usize, name: String },
    #[error("expected a space after the auth scheme {scheme:?} at byte {at}, found {found}")]
    ExpectedSpace {
        at: usize,
        scheme: String,
        found: String,
    },
    #[error("expected `=` after parameter {name:?} at byte {at}, found {found}")]
    ExpectedEquals {
        at: usize,
        name: String,
        found: String,
    },
    #[error("parameter {name:?} has no value at byte {at} (write {name}=\"value\")")]
    MissingValue { at: usize, name: String },
    #[error(
        "the quoted value of parameter {name:?} opened at byte {at} is never closed (add the closing `\"`, and escape any `\"` inside as `\\\"`)"
    )]
    Unterminated { at: usize, name: String },
    #[error(
        "control character {byte:#04x} at byte {at} in the quoted value of parameter {name:?} (only tabs and visible characters are allowed)"
    )]
    ControlCharacter { at: usize, byte: u8, name: String },
    #[error("parameter {name:?} appears twice in the {scheme} challenge (again at byte {at})")]
    Duplicate {
        at: usize,
        name: String,
        scheme: String,
    },
    #[error(
        "the {scheme} challenge has a token68, so it cannot also have parameter {name:?} at byte {at}"
    )]
    Token68WithParameters {
        at: usize,
        name: String,
        scheme: String,
    },
    #[error("expected `,` or the end of the header at byte {at}, found {found}")]
    ExpectedComma { at: usize, found: String },
}

/// Parses a `WWW-Authenticate` header into its challenges, in the order sent.
///
/// Accepts what RFC 7235 allows (several challenges, `token68`, quoted strings with escapes,
/// optional white space around `=` and `,`, empty list elements) and one leniency: an unquoted
/// value may hold any visible character but `,` and `"` (e.g. `realm=https://auth/token`),
/// which some servers send. A parameter appearing twice in one challenge is an error, because
/// two different `realm`s leave no safe choice.
pub fn parse(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    Parser {
        s: header,
        b: header.as_bytes(),
        i: 0,
    }
    .run()
    .map_err(|problem| ChallengeError {
        input: truncate(header, 100),
        problem,
    })
}

/// The scope for `actions` on a repository, as a challenge and a token request write it:
/// `scope("library/alpine", &["pull", "push"])` is `repository:library/alpine:pull,push`.
pub fn scope(repository: &str, actions: &[&str]) -> String {
    format!("repository:{repository}:{}", actions.join(","))
}

/// Splits one scope into resource type, resource name and actions:
/// `repository:localhost:5000/app:pull,push` is `("repository", "localhost:5000/app",
/// ["pull", "push"])`. The type may carry a class (`repository(plugin)`); the name may contain
/// `:` (a registry port), so the actions are what follows the last `:`.
///
/// A `scope` parameter may list several scopes separated by spaces; split it first
/// (`challenge.scope().unwrap_or("").split_whitespace()`). `None` if `s` is not one scope:
/// a part is empty, an action is empty, or it contains white space.
pub fn parse_scope(s: &str) -> Option<(String, String, Vec<String>)> {
    if s.chars().any(char::is_whitespace) {
        return None;
    }
    let (kind, rest) = s.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    let actions: Vec<String> = actions.split(',').map(str::to_owned).collect();
    if actions.iter().any(String::is_empty) {
        return None;
    }
    Some((kind.to_owned(), name.to_owned(), actions))
}

/// An index-based scanner. Every method moves `i` forward only, and every loop advances it, so
/// parsing ends after at most a few passes' worth of work over the header.
struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn run(mut self) -> Result<Vec<Challenge>, Problem> {
        let mut out: Vec<Challenge> = Vec::new();
        // A challenge with a token68 takes no parameters; remember it for the elements after it.
        let mut last_has_token68 = false;
        loop {
            self.skip_separators();
            if self.i >= self.b.len() {
                break;
            }
            let at = self.i;
            let name = self.token();
            if name.is_empty() {
                return Err(Problem::ExpectedName {
                    at,
                    found: self.found(at),
                });
            }
            let after_name = self.i;
            self.skip_ows();
            if self.peek() == Some(b'=') {
                // `name=` can only be a parameter: a new challenge's scheme is followed by a
                // space, a comma or the end.
                let Some(current) = out.last_mut() else {
                    return Err(Problem::ParameterBeforeScheme {
                        at,
                        name: name.to_owned(),
                    });
                };
                if last_has_token68 {
                    return Err(Problem::Token68WithParameters {
                        at,
                        name: name.to_owned(),
                        scheme: current.scheme.to_string(),
                    });
                }
                self.i += 1;
                self.param(current, at, name)?;
            } else {
                let mut challenge = Challenge {
                    scheme: Scheme::from_name(name),
                    params: BTreeMap::new(),
                };
                last_has_token68 = self.after_scheme(&mut challenge, name, after_name)?;
                out.push(challenge);
            }
        }
        if out.is_empty() {
            return Err(Problem::Empty);
        }
        Ok(out)
    }

    /// Reads what follows a scheme up to the next `,` or the end: nothing, a token68 or the
    /// first parameter. Returns whether it was a token68.
    fn after_scheme(
        &mut self,
        challenge: &mut Challenge,
        scheme: &str,
        after_name: usize,
    ) -> Result<bool, Problem> {
        if matches!(self.peek(), None | Some(b',')) {
            return Ok(false);
        }
        if self.i == after_name {
            return Err(Problem::ExpectedSpace {
                at: self.i,
                scheme: scheme.to_owned(),
                found: self.found(self.i),
            });
        }
        // token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=", and it must
        // be the whole element; otherwise this is `name=value`.
        let start = self.i;
        let mut j = start;
        while j < self.b.len() && is_token68(self.b[j]) {
            j += 1;
        }
        if j > start {
            while j < self.b.len() && self.b[j] == b'=' {
                j += 1;
            }
            let end = j;
            while j < self.b.len() && is_ows(self.b[j]) {
                j += 1;
            }
            if j == self.b.len() || self.b[j] == b',' {
                challenge
                    .params
                    .insert(TOKEN68.to_owned(), self.s[start..end].to_owned());
                self.i = j;
                return Ok(true);
            }
        }
        let at = self.i;
        let name = self.token();
        if name.is_empty() {
            return Err(Problem::ExpectedName {
                at,
                found: self.found(at),
            });
        }
        self.skip_ows();
        if self.peek() != Some(b'=') {
            return Err(Problem::ExpectedEquals {
                at: self.i,
                name: name.to_owned(),
                found: self.found(self.i),
            });
        }
        self.i += 1;
        self.param(challenge, at, name)?;
        Ok(false)
    }

    /// Reads a parameter's value (just after its `=`), stores it, and checks that a `,` or the
    /// end follows.
    fn param(&mut self, challenge: &mut Challenge, at: usize, name: &str) -> Result<(), Problem> {
        self.skip_ows();
        let value = if self.peek() == Some(b'"') {
            self.quoted(name)?
        } else {
            let start = self.i;
            while self.i < self.b.len() && is_unquoted(self.b[self.i]) {
                self.i += 1;
            }
            if self.i == start {
                return Err(Problem::MissingValue {
                    at: start,
                    name: name.to_owned(),
                });
            }
            self.s[start..self.i].to_owned()
        };
        let key = name.to_ascii_lowercase();
        if challenge.params.contains_key(&key) {
            return Err(Problem::Duplicate {
                at,
                name: key,
                scheme: challenge.scheme.to_string(),
            });
        }
        challenge.params.insert(key, value);
        self.skip_ows();
        match self.peek() {
            None | Some(b',') => Ok(()),
            Some(_) => Err(Problem::ExpectedComma {
                at: self.i,
                found: self.found(self.i),
            }),
        }
    }

    /// Reads a quoted string starting at its opening `"`, removing quotes and escapes.
    fn quoted(&mut self, name: &str) -> Result<String, Problem> {
        let open = self.i;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(Problem::Unterminated {
                    at: open,
                    name: name.to_owned(),
                });
            };
            match c {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' => {
                    self.i += 1;
                    let Some(escaped) = self.peek() else {
                        return Err(Problem::Unterminated {
                            at: open,
                            name: name.to_owned(),
                        });
                    };
                    if is_ctl(escaped) {
                        return Err(self.control(escaped, name));
                    }
                    out.push(escaped);
                    self.i += 1;
                }
                c if is_ctl(c) => return Err(self.control(c, name)),
                c => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        // Only ASCII backslashes were removed from valid UTF-8, so this cannot fail; lossy
        // conversion keeps the no-panic promise without an unwrap.
        Ok(String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn control(&self, byte: u8, name: &str) -> Problem {
        Problem::ControlCharacter {
            at: self.i,
            byte,
            name: name.to_owned(),
        }
    }

    /// Reads a token (possibly empty); tokens are ASCII, so the slice is on char boundaries.
    fn token(&mut self) -> &'a str {
        let start = self.i;
        while self.i < self.b.len() && is_tchar(self.b[self.i]) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while self.i < self.b.len() && is_ows(self.b[self.i]) {
            self.i += 1;
        }
    }

    /// Skips white space and commas: RFC 7230 section 7 asks recipients to accept empty list
    /// elements (`a, , b`).
    fn skip_separators(&mut self) {
        while self.i < self.b.len() && (is_ows(self.b[self.i]) || self.b[self.i] == b',') {
            self.i += 1;
        }
    }

    fn found(&self, at: usize) -> String {
        match self.b.get(at) {
            None => "the end of the header".to_owned(),
            Some(&byte) => match self.s.get(at..).and_then(|rest| rest.chars().next()) {
                Some(c) => format!("{c:?}"),
                None => format!("byte {byte:#04x}"),
            },
        }
    }
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// RFC 7230 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

/// Characters of an unquoted value: a token, leniently extended to every visible character
/// but the two that would make the header ambiguous.
fn is_unquoted(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b',' && b != b'"'
}

fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(scheme: Scheme, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme,
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn other(name: &str) -> Scheme {
        Scheme::Other(name.to_owned())
    }

    #[test]
    fn valid_headers() {
        use Scheme::{Basic, Bearer};
        let table: Vec<(&str, Vec<Challenge>)> = vec![
            // Docker Hub
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
                vec![ch(
                    Bearer,
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:library/alpine:pull"),
                    ],
                )],
            ),
            // GHCR
            (
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:wharf-rs/wharf:pull""#,
                vec![ch(
                    Bearer,
                    &[
                        ("realm", "https://ghcr.io/token"),
                        ("service", "ghcr.io"),
                        ("scope", "repository:wharf-rs/wharf:pull"),
                    ],
                )],
            ),
            // distribution with htpasswd auth
            (
                r#"Basic realm="basic-realm""#,
                vec![ch(Basic, &[("realm", "basic-realm")])],
            ),
            // distribution's token auth when the token lacks a scope
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push",error="insufficient_scope""#,
                vec![ch(
                    Bearer,
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:samalba/my-app:pull,push"),
                        ("error", "insufficient_scope"),
                    ],
                )],
            ),
            // ECR
            (
                r#"Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#,
                vec![ch(
                    Basic,
                    &[
                        (
                            "realm",
                            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",
                        ),
                        ("service", "ecr.amazonaws.com"),
                    ],
                )],
            ),
            // Quay
            (
                r#"Bearer realm="https://quay.io/v2/auth",service="quay.io""#,
                vec![ch(
                    Bearer,
                    &[("realm", "https://quay.io/v2/auth"), ("service", "quay.io")],
                )],
            ),
            // several challenges in one header
            (
                r#"Bearer realm="a",service="b", Basic realm="x""#,
                vec![
                    ch(Bearer, &[("realm", "a"), ("service", "b")]),
                    ch(Basic, &[("realm", "x")]),
                ],
            ),
            // RFC 7235 section 4.1's example: unquoted values, escapes, an unknown scheme
            (
                r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
                vec![
                    ch(
                        other("newauth"),
                        &[
                            ("realm", "apps"),
                            ("type", "1"),
                            ("title", r#"Login to "apps""#),
                        ],
                    ),
                    ch(Basic, &[("realm", "simple")]),
                ],
            ),
            // case-insensitive scheme and parameter names; values keep their case
            (
                r#"BEARER Realm="Https://Auth",SERVICE="Reg""#,
                vec![ch(Bearer, &[("realm", "Https://Auth"), ("service", "Reg")])],
            ),
            // white space everywhere it may be, including tabs and around `=`
            (
                "  Bearer \t realm = \"a\" ,\tservice=\"b\"  ",
                vec![ch(Bearer, &[("realm", "a"), ("service", "b")])],
            ),
            // escapes: backslash before any character drops the backslash
            (
                r#"Basic realm="a\\b \"c\" \d""#,
                vec![ch(Basic, &[("realm", r#"a\b "c" d"#)])],
            ),
            // token68
            (
                "Negotiate YIIB6wYJKoZIhvcSAQICAQBuggHaMIIB1qADAgEF/+~.==",
                vec![ch(
                    other("negotiate"),
                    &[("token68", "YIIB6wYJKoZIhvcSAQICAQBuggHaMIIB1qADAgEF/+~.==")],
                )],
            ),
            // token68 followed by another challenge
            (
                r#"Basic dXNlcjpwYXNz==, Bearer realm="r""#,
                vec![
                    ch(Basic, &[("token68", "dXNlcjpwYXNz==")]),
                    ch(Bearer, &[("realm", "r")]),
                ],
            ),
            // schemes without parameters
            (
                "Negotiate, NTLM",
                vec![ch(other("negotiate"), &[]), ch(other("ntlm"), &[])],
            ),
            ("Basic", vec![ch(Basic, &[])]),
            // empty list elements and a trailing comma
            (
                r#", Bearer realm="a",, service="b","#,
                vec![ch(Bearer, &[("realm", "a"), ("service", "b")])],
            ),
            // an empty quoted value
            (
                r#"Bearer realm="",service="s""#,
                vec![ch(Bearer, &[("realm", ""), ("service", "s")])],
            ),
            // non-ASCII in a quoted value
            (
                r#"Basic realm="Zürich registry""#,
                vec![ch(Basic, &[("realm", "Zürich registry")])],
            ),
            // leniency: unquoted values with `/` and `:`
            (
                "Bearer realm=https://auth.example.com/token,service=registry.example.com:5000",
                vec![ch(
                    Bearer,
                    &[
                        ("realm", "https://auth.example.com/token"),
                        ("service", "registry.example.com:5000"),
                    ],
                )],
            ),
            // several scopes in one parameter
            (
                r#"Bearer realm="r",scope="repository:a/b:pull repository:c:pull,push""#,
                vec![ch(
                    Bearer,
                    &[
                        ("realm", "r"),
                        ("scope", "repository:a/b:pull repository:c:pull,push"),
                    ],
                )],
            ),
            // a parameter named like a scheme, after a comma
            (
                r#"Bearer realm="r", basic=1"#,
                vec![ch(Bearer, &[("realm", "r"), ("basic", "1")])],
            ),
        ];
        assert!(table.len() >= 15);
        for (input, expected) in table {
            match parse(input) {
                Ok(got) => assert_eq!(got, expected, "parsing {input:?}"),
                Err(e) => panic!("parsing {input:?}: {e}"),
            }
        }
    }

    #[test]
    fn malformed_headers() {
        let table: &[(&str, &str)] = &[
            ("", "it is empty"),
            ("   \t ", "it is empty"),
            (" , ,, ", "it is empty"),
            (
                r#"Bearer realm="https://auth"#,
                r#"quoted value of parameter "realm" opened at byte 13 is never closed"#,
            ),
            (r#"Bearer realm="a\""#, "is never closed"),
            (r#"Bearer realm="a\"#, "is never closed"),
            (
                "Bearer realm=\"a\u{1}b\"",
                "control character 0x01 at byte 15",
            ),
            (
                "Bearer realm=\"a\\\nb\"",
                "control character 0x0a at byte 16",
            ),
            (
                r#"realm="x""#,
                r#"parameter "realm" at byte 0 comes before any auth scheme"#,
            ),
            (
                r#"Bearer realm="a" service="b""#,
                r#"expected `,` or the end of the header at byte 17, found 's'"#,
            ),
            (r#"Bearer realm="a"x"#, "expected `,` or the end"),
            (
                r#"Bearer realm="a", Realm="b""#,
                r#"parameter "realm" appears twice in the Bearer challenge (again at byte 18)"#,
            ),
            (
                r#"Bearer service="s", realm="#,
                r#"parameter "realm" has no value at byte 26"#,
            ),
            (
                r#"Bearer realm=, service="s""#,
                "the Bearer challenge has a token68, so it cannot also have parameter \"service\"",
            ),
            (
                r#""Bearer" realm="x""#,
                r#"expected an auth scheme or a parameter name at byte 0, found '"'"#,
            ),
            (
                r#"Bearer realm="a",, =b"#,
                "expected an auth scheme or a parameter name at byte 19, found '='",
            ),
            (
                "Bearer@realm",
                r#"expected a space after the auth scheme "Bearer" at byte 6, found '@'"#,
            ),
            (
                r#"Bearer realm "x""#,
                r#"expected `=` after parameter "realm" at byte 13, found '"'"#,
            ),
            (
                r#"Bearer "realm"="x""#,
                "expected an auth scheme or a parameter name at byte 7",
            ),
            ("Basic é=1", "found 'é'"),
        ];
        assert!(table.len() >= 10);
        for (input, fragment) in table {
            match parse(input) {
                Ok(got) => panic!("parsing {input:?} should fail, got {got:?}"),
                Err(e) => {
                    let message = e.to_string();
                    assert!(
                        message.contains(fragment),
                        "parsing {input:?}: {message:?} should contain {fragment:?}"
                    );
                    assert!(
                        message
                            .starts_with(&format!("invalid WWW-Authenticate header {:?}: ", input)),
                        "{message}"
                    );
                }
            }
        }
    }

    #[test]
    fn errors_cut_long_headers_to_100_characters() {
        let header = format!("Bearer realm=\"{}", "é".repeat(500));
        let e = parse(&header).unwrap_err();
        assert_eq!(e.input.chars().count(), 101);
        assert!(e.input.ends_with('…'));
        assert!(e.to_string().len() < 400, "{e}");
    }

    #[test]
    fn accessors() {
        let challenges = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        )
        .unwrap();
        let c = &challenges[0];
        assert_eq!(c.realm(), Some("https://auth.docker.io/token"));
        assert_eq!(c.service(), Some("registry.docker.io"));
        assert_eq!(c.scope(), Some("repository:library/alpine:pull"));
        let basic = &parse("Basic").unwrap()[0];
        assert_eq!(
            (basic.realm(), basic.service(), basic.scope()),
            (None, None, None)
        );
        assert_eq!(Scheme::Other("negotiate".into()).to_string(), "negotiate");
        assert_eq!(Scheme::Bearer.to_string(), "Bearer");
    }

    #[test]
    fn scopes() {
        assert_eq!(
            scope("library/alpine", &["pull", "push"]),
            "repository:library/alpine:pull,push"
        );
        assert_eq!(scope("app", &["pull"]), "repository:app:pull");
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        type Parts<'a> = (&'a str, &'a str, &'a [&'a str]);
        let ok: &[(&str, Parts)] = &[
            (
                "repository:library/alpine:pull",
                ("repository", "library/alpine", &["pull"]),
            ),
            (
                "repository:samalba/my-app:pull,push",
                ("repository", "samalba/my-app", &["pull", "push"]),
            ),
            (
                "repository:localhost:5000/app:pull",
                ("repository", "localhost:5000/app", &["pull"]),
            ),
            (
                "repository(plugin):vieux/sshfs:pull",
                ("repository(plugin)", "vieux/sshfs", &["pull"]),
            ),
            ("registry:catalog:*", ("registry", "catalog", &["*"])),
        ];
        for (input, (kind, name, actions)) in ok {
            assert_eq!(
                parse_scope(input),
                Some((kind.to_string(), name.to_string(), strings(actions))),
                "{input}"
            );
        }
        for bad in [
            "",
            "repository",
            "repository:app",
            ":app:pull",
            "repository::pull",
            "repository:app:",
            "repository:app:pull,",
            "repository:a:pull repository:b:pull",
        ] {
            assert_eq!(parse_scope(bad), None, "{bad:?}");
        }
        let (kind, name, actions) = parse_scope(&scope("a/b", &["pull", "push"])).unwrap();
        assert_eq!(
            (kind.as_str(), name.as_str(), actions),
            ("repository", "a/b", strings(&["pull", "push"]))
        );
    }

    /// A cheap stand-in for the fuzzer: many random headers over the characters that matter
    /// to the grammar, plus a few pathological shapes. Parsing must return, never panic.
    #[test]
    fn never_panics() {
        let alphabet: &[&str] = &[
            "Bearer", "Basic", " ", "\t", ",", "=", "==", "\"", "\\", "realm", "a", "/", "é",
            "\u{1}", "\u{7f}", "@", "token68",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            // xorshift64: deterministic, so a failure reproduces.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let header: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse(&header);
        }
        for piece in ["\"", "\\", ",", "=", " ", "a=", "a=b,", "Basic ", "é"] {
            let _ = parse(&piece.repeat(100_000));
        }
        let many = "Bearer a=\"b\", ".repeat(20_000);
        assert_eq!(parse(&many).unwrap().len(), 20_000);
    }
}
