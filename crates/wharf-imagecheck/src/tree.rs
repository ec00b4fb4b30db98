//! The image's file system as a container sees it, in memory: layers applied in order,
//! whiteouts honored. Symlinks are resolved here, inside the image, and nowhere else: `..` at
//! the root stays at the root and an absolute target starts again at the image's root, so
//! resolution can never leave the image.

use std::collections::BTreeMap;
use std::ops::Bound;

use wharf_oci::Digest;

use crate::report::{CheckKind, Finding};
use crate::secret;

/// Links followed before giving up, as Linux does (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;
/// Path components processed in one resolution: bounds the work of hostile link targets.
const MAX_STEPS: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File {
        size: u64,
    },
    Dir,
    Symlink {
        target: String,
    },
    /// Devices and fifos.
    Other,
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Permission bits from the tar header.
    pub mode: u32,
    /// Index of the layer (in manifest order) the entry comes from.
    pub layer: usize,
    /// Kept only for the few files the checks read after all layers (`/etc/passwd`).
    pub content: Option<Vec<u8>>,
}

/// One layer's effect on the tree, in entry order.
#[derive(Debug)]
pub(crate) enum Change {
    /// `.wh.<name>`: hides `<name>` (and what is under it) of lower layers.
    Whiteout(String),
    /// `.wh..wh..opq`: hides everything lower layers put in this directory.
    Opaque(String),
    Add(String, Node),
    /// A hard link shares its target's inode, so it takes the target's metadata.
    Hardlink {
        path: String,
        target: String,
        mode: u32,
    },
}

/// Where a path leads.
#[derive(Debug)]
pub(crate) enum Resolved<'a> {
    Node(String, &'a Node),
    /// A directory that exists only because entries are under it (no entry of its own).
    ImplicitDir(String),
    Missing,
    /// More than [`MAX_LINKS`] links or [`MAX_STEPS`] components: a loop, or hostile.
    Loop,
}

/// Paths are relative, normalized and `/`-separated (`etc/passwd`); the root is `""`.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    pub(crate) fn apply(&mut self, layer: usize, changes: Vec<Change>) {
        // Whiteouts hide what lower layers put there, never entries of their own layer,
        // whatever the order of the entries: apply them first.
        for change in &changes {
            match change {
                Change::Whiteout(path) => {
                    self.nodes.remove(path);
                    self.remove_under(path);
                }
                Change::Opaque(dir) => self.remove_under(dir),
                _ => {}
            }
        }
        for change in changes {
            match change {
                Change::Add(path, node) => self.insert(path, Node { layer, ..node }),
                Change::Hardlink { path, target, mode } => {
                    let node = match self.nodes.get(&target) {
                        Some(node) if matches!(node.kind, Kind::File { .. }) => Node {
                            layer,
                            ..node.clone()
                        },
                        _ => Node {
                            kind: Kind::File { size: 0 },
                            mode,
                            layer,
                            content: None,
                        },
                    };
                    self.insert(path, node);
                }
                Change::Whiteout(_) | Change::Opaque(_) => {}
            }
        }
    }

    fn insert(&mut self, path: String, node: Node) {
        // Anything but a directory replaces a lower directory with all its content.
        if node.kind != Kind::Dir {
            self.remove_under(&path);
        }
        self.nodes.insert(path, node);
    }

    fn remove_under(&mut self, dir: &str) {
        let doomed: Vec<String> = self.under(dir).map(|(k, _)| k.clone()).collect();
        for key in doomed {
            self.nodes.remove(&key);
        }
    }

    /// Everything below `dir` (not `dir` itself), in order.
    fn under<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a String, &'a Node)> + 'a {
        if dir.is_empty() {
            return self.nodes.range::<String, _>(..);
        }
        // "a/" up to "a0": '0' is the character after '/'.
        let (start, end) = (format!("{dir}/"), format!("{dir}0"));
        self.nodes
            .range::<String, _>((Bound::Included(start), Bound::Excluded(end)))
    }

    fn is_implicit_dir(&self, path: &str) -> bool {
        path.is_empty() || self.under(path).next().is_some()
    }

    /// Follows `path` through symlinks, including its last component.
    pub(crate) fn resolve(&self, path: &str) -> Resolved<'_> {
        // Components still to walk, last on top.
        let mut todo: Vec<String> = path.rsplit('/').map(str::to_string).collect();
        let mut current: Vec<String> = Vec::new();
        let (mut links, mut steps) = (0, 0);
        while let Some(component) = todo.pop() {
            steps += 1;
            if steps > MAX_STEPS {
                return Resolved::Loop;
            }
            match component.as_str() {
                "" | "." => continue,
                ".." => {
                    current.pop();
                    continue;
                }
                _ => current.push(component),
            }
            let here = current.join("/");
            match self.nodes.get(&here) {
                Some(Node {
                    kind: Kind::Symlink { target },
                    ..
                }) => {
                    links += 1;
                    if links > MAX_LINKS || todo.len() + target.len() / 2 > MAX_STEPS {
                        return Resolved::Loop;
                    }
                    current.pop();
                    if target.starts_with('/') {
                        current.clear();
                    }
                    todo.extend(target.rsplit('/').map(str::to_string));
                }
                Some(node) => {
                    let more = todo.iter().any(|c| !c.is_empty() && c != ".");
                    if more && node.kind != Kind::Dir {
                        return Resolved::Missing;
                    }
                }
                None if self.is_implicit_dir(&here) => {}
                None => return Resolved::Missing,
            }
        }
        let here = current.join("/");
        match self.nodes.get(&here) {
            Some(node) => Resolved::Node(here, node),
            None => Resolved::ImplicitDir(here),
        }
    }

    /// The content kept for the regular file at `path` (symlinks followed), and its node.
    pub(crate) fn content(&self, path: &str) -> Option<(&Node, &[u8])> {
        match self.resolve(path) {
            Resolved::Node(_, node) => node.content.as_deref().map(|c| (node, c)),
            _ => None,
        }
    }

    /// Regular files and directories anyone may write, except sticky directories such as
    /// `/tmp`, where only an entry's owner may remove it.
    pub(crate) fn world_writable(&self, layers: &[&Digest]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (path, node) in &self.nodes {
            let what = match node.kind {
                Kind::File { .. } => "file",
                Kind::Dir if node.mode & 0o1000 == 0 => "directory",
                _ => continue,
            };
            if node.mode & 0o002 != 0 {
                findings.push(
                    Finding::error(
                        CheckKind::WorldWritable,
                        format!(
                            "{what} is writable by every user (mode {:04o})",
                            node.mode & 0o7777
                        ),
                    )
                    .at(format!("/{path}"))
                    .in_layer(layers[node.layer]),
                );
            }
        }
        findings
    }

    /// Symlink loops, and secrets reached through a symlink's name (`.env -> /config/x`,
    /// `.aws -> /opt/aws` holding `credentials`).
    pub(crate) fn symlink_findings(&self, layers: &[&Digest]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (path, node) in &self.nodes {
            let Kind::Symlink { target } = &node.kind else {
                continue;
            };
            let layer = layers[node.layer];
            let name = path.rsplit('/').next().unwrap_or(path);
            match self.resolve(path) {
                Resolved::Loop => findings.push(
                    Finding::warning(
                        CheckKind::SymlinkLoop,
                        format!(
                            "symlink to {target:?} never resolves: a loop, or more than \
                             {MAX_LINKS} links"
                        ),
                    )
                    .at(format!("/{path}"))
                    .in_layer(layer),
                ),
                Resolved::Node(real, found) if is_content(found) => {
                    if let Some(rule) = secret::by_name(path) {
                        findings.push(secret_link(path, &real, rule, layer));
                    }
                }
                Resolved::Node(
                    real,
                    Node {
                        kind: Kind::Dir, ..
                    },
                )
                | Resolved::ImplicitDir(real)
                    if secret::is_secret_dir(name) =>
                {
                    for (child, found) in self.under(&real) {
                        let child_name = &child[real.len() + usize::from(!real.is_empty())..];
                        if child_name.contains('/') || !is_content(found) {
                            continue;
                        }
                        if let Some(rule) = secret::by_last_two(name, child_name) {
                            let alias = format!("{path}/{child_name}");
                            findings.push(secret_link(&alias, child, rule, layer));
                        }
                    }
                }
                _ => {}
            }
        }
        findings
    }
}

fn is_content(node: &Node) -> bool {
    matches!(node.kind, Kind::File { size } if size > 0)
}

fn secret_link(path: &str, real: &str, rule: secret::Rule, layer: &Digest) -> Finding {
    Finding::error(
        CheckKind::Secret,
        format!(
            "named like {} and leads to the file /{real} through a symlink",
            rule.description
        ),
    )
    .at(format!("/{path}"))
    .in_layer(layer)
    .rule(rule.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: Kind) -> Node {
        Node {
            kind,
            mode: 0o755,
            layer: 0,
            content: None,
        }
    }

    fn link(target: &str) -> Node {
        node(Kind::Symlink {
            target: target.into(),
        })
    }

    fn tree(entries: &[(&str, Node)]) -> Tree {
        let mut tree = Tree::default();
        let changes = entries
            .iter()
            .map(|(p, n)| Change::Add(p.to_string(), n.clone()))
            .collect();
        tree.apply(0, changes);
        tree
    }

    fn resolved(tree: &Tree, path: &str) -> String {
        match tree.resolve(path) {
            Resolved::Node(p, _) | Resolved::ImplicitDir(p) => p,
            Resolved::Missing => "<missing>".into(),
            Resolved::Loop => "<loop>".into(),
        }
    }

    #[test]
    fn resolution_stays_inside_the_image() {
        let t = tree(&[
            ("etc/passwd", node(Kind::File { size: 1 })),
            ("a/up", link("../../../../etc/passwd")),
            ("a/abs", link("/etc/passwd")),
            ("a/rel", link("../etc")),
            ("a/self", link(".")),
            ("loop1", link("loop2")),
            ("loop2", link("/loop1")),
            ("dir1", link("dir2/sub")),
            ("dir2", link("dir1")),
        ]);
        assert_eq!(resolved(&t, "a/up"), "etc/passwd");
        assert_eq!(resolved(&t, "a/abs"), "etc/passwd");
        assert_eq!(resolved(&t, "a/rel/passwd"), "etc/passwd");
        assert_eq!(resolved(&t, "a/self/self/self/abs"), "etc/passwd");
        assert_eq!(resolved(&t, "a/nothing"), "<missing>");
        assert_eq!(resolved(&t, "etc/passwd/x"), "<missing>");
        assert_eq!(resolved(&t, "loop1"), "<loop>");
        assert_eq!(resolved(&t, "dir1/file"), "<loop>");
    }

    #[test]
    fn whiteouts_hide_lower_layers_only() {
        let mut t = tree(&[
            ("app/secret", node(Kind::File { size: 1 })),
            ("app/keep", node(Kind::File { size: 1 })),
            ("opt/a/b", node(Kind::File { size: 1 })),
        ]);
        t.apply(
            1,
            vec![
                Change::Add("app/secret".into(), node(Kind::File { size: 2 })),
                Change::Whiteout("app/secret".into()),
                Change::Opaque("opt".into()),
            ],
        );
        assert_eq!(
            t.nodes.get("app/secret").unwrap().kind,
            Kind::File { size: 2 }
        );
        assert!(t.nodes.contains_key("app/keep"));
        assert!(!t.nodes.contains_key("opt/a/b"));
    }
}
