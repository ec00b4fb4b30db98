//! Does the image run as root? The config's `User` is `user[:group]`, where `user` is a
//! number or a name that the runtime looks up in the image's `/etc/passwd`.

use wharf_oci::Digest;

use crate::report::{CheckKind, Finding};
use crate::tree::Tree;

const HINT: &str = "set User to a numeric non-zero uid, such as 65532";

/// The uid the image runs as (when it can be told) and a finding if it is root or unknown.
pub(crate) fn check(
    user: Option<&str>,
    tree: &Tree,
    layers: &[&Digest],
) -> (Option<u64>, Option<Finding>) {
    let user = user.unwrap_or("").trim();
    let name = user.split(':').next().unwrap_or("");
    let root = |why: String| Finding::error(CheckKind::User, format!("{why} ({HINT})"));
    if name.is_empty() {
        let why = "no User is set, so the container runs as root".to_string();
        return (Some(0), Some(root(why)));
    }
    if let Ok(uid) = name.parse::<u64>() {
        let finding = (uid == 0).then(|| root(format!("User {user:?} is uid 0, root")));
        return (Some(uid), finding);
    }
    if name == "root" {
        return (Some(0), Some(root(format!("User {user:?} is root"))));
    }
    let Some((node, passwd)) = tree.content("etc/passwd") else {
        let finding = Finding::warning(
            CheckKind::User,
            format!(
                "User {user:?} is a name, and the image has no readable /etc/passwd to \
                 resolve it ({HINT})"
            ),
        );
        return (None, Some(finding));
    };
    let layer = layers[node.layer];
    match lookup(passwd, name) {
        Some(0) => {
            let finding = root(format!(
                "User {user:?} has uid 0 in /etc/passwd, so it is root"
            ))
            .at("/etc/passwd")
            .in_layer(layer);
            (Some(0), Some(finding))
        }
        Some(uid) => (Some(uid), None),
        None => {
            let finding = Finding::warning(
                CheckKind::User,
                format!(
                    "User {user:?} is not in /etc/passwd, so the container cannot start ({HINT})"
                ),
            )
            .at("/etc/passwd")
            .in_layer(layer);
            (None, Some(finding))
        }
    }
}

/// The uid of `name` in passwd(5) text: `name:password:uid:gid:gecos:home:shell`.
fn lookup(passwd: &[u8], name: &str) -> Option<u64> {
    String::from_utf8_lossy(passwd).lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::lookup;

    #[test]
    fn passwd_lookup() {
        let passwd =
            b"root:x:0:0:root:/root:/bin/sh\nadmin:x:0:0::/:/bin/sh\napp:x:1000:1000::/app:\n";
        assert_eq!(lookup(passwd, "root"), Some(0));
        assert_eq!(lookup(passwd, "admin"), Some(0));
        assert_eq!(lookup(passwd, "app"), Some(1000));
        assert_eq!(lookup(passwd, "ap"), None);
        assert_eq!(lookup(b"broken", "broken"), None);
    }
}
