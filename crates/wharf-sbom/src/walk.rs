//! Which packages cargo compiles for one root package: cargo's feature resolution (resolver
//! 2), redone from that root.
//!
//! Why not just follow `resolve.nodes[].deps` from the root: `cargo metadata` has no `-p`, so
//! its resolve unifies features over the whole workspace. In wharf itself, reqwest turns on
//! hyper's `http2` feature, so hyper's node lists `h2`, and a plain walk from `hello-service`
//! reported 16 packages (h2, indexmap, tracing, ...) that `cargo build -p hello-service`
//! never compiles. So the walk below activates features the way cargo's `FeatureResolver`
//! does for `cargo build -p <root>`: from the root's requested features, dependency by
//! dependency, with target and host (build scripts, proc macros) kept apart. The resolve is
//! still what maps each declared dependency to a locked package, and it must hold every
//! package the root can need (made with at least the root's features).
//!
//! Build-dependencies are always resolved, because their host-side features can reach a
//! proc macro's dependencies; they only enter the result when asked for.

use std::collections::{BTreeMap, BTreeSet};

use cargo_metadata::cargo_platform::Platform;
use cargo_metadata::{Dependency, DependencyKind, Metadata, PackageId, Resolve};

use crate::{Error, Options};

/// The packages reached from the root (indices into `metadata.packages`), and the edges
/// among them.
pub(crate) struct Walked {
    pub root: usize,
    pub packages: BTreeSet<usize>,
    pub edges: BTreeSet<(usize, usize)>,
}

/// Target code, or code that runs on the host at build time (build scripts, proc macros and
/// everything they depend on). Resolver 2 resolves features separately for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum For {
    Target,
    Host,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Normal,
    Build,
    Dev,
}

/// A dependency as declared in a manifest, matched to the package the resolve locked for it.
struct Decl<'m> {
    dep: &'m Dependency,
    kind: Kind,
    package: usize,
}

/// A parsed entry of a `[features]` list (cargo's `FeatureValue`).
enum Value<'a> {
    Feature(&'a str),
    Dep(&'a str),
    DepFeature {
        dep: &'a str,
        feature: &'a str,
        weak: bool,
    },
}

fn value(text: &str) -> Value<'_> {
    if let Some(dep) = text.strip_prefix("dep:") {
        return Value::Dep(dep);
    }
    match text.split_once('/') {
        Some((dep, feature)) => match dep.strip_suffix('?') {
            Some(dep) => Value::DepFeature {
                dep,
                feature,
                weak: true,
            },
            None => Value::DepFeature {
                dep,
                feature,
                weak: false,
            },
        },
        None => Value::Feature(text),
    }
}

struct Walker<'m> {
    metadata: &'m Metadata,
    options: &'m Options,
    root: usize,
    decls: Vec<Vec<Decl<'m>>>,
    proc_macro: Vec<bool>,
    features: BTreeMap<(usize, For), BTreeSet<String>>,
    /// Optional dependencies turned on, by the name features use.
    activated_deps: BTreeMap<(usize, For), BTreeSet<String>>,
    processed: BTreeSet<(usize, For)>,
    /// `dep?/feature` seen before `dep` was on: applied if it ever is.
    deferred: BTreeMap<(usize, For, String), BTreeSet<String>>,
    edges: BTreeSet<(Node, Node, Kind)>,
}

/// A package built in one context.
type Node = (usize, For);

pub(crate) fn walk(
    metadata: &Metadata,
    resolve: &Resolve,
    root: &PackageId,
    options: &Options,
) -> Result<Walked, Error> {
    let index: BTreeMap<&PackageId, usize> = metadata
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| (&p.id, i))
        .collect();
    let root_index = *index.get(root).ok_or_else(|| Error::NoPackageId {
        id: root.repr.clone(),
    })?;
    let mut decls: Vec<Vec<Decl>> = metadata.packages.iter().map(|_| Vec::new()).collect();
    for node in &resolve.nodes {
        let Some(&from) = index.get(&node.id) else {
            continue;
        };
        decls[from] = match_declarations(metadata, &index, from, node);
    }
    let proc_macro = metadata
        .packages
        .iter()
        .map(|p| p.targets.iter().any(|t| t.is_proc_macro()))
        .collect();
    let mut walker = Walker {
        metadata,
        options,
        root: root_index,
        decls,
        proc_macro,
        features: BTreeMap::new(),
        activated_deps: BTreeMap::new(),
        processed: BTreeSet::new(),
        deferred: BTreeMap::new(),
        edges: BTreeSet::new(),
    };
    let requested = walker.requested()?;
    let requested: Vec<Value> = requested.iter().map(|f| value(f)).collect();
    walker.activate_package(root_index, For::Target, &requested);
    Ok(walker.reachable())
}

/// Pairs each dependency `from`'s manifest declares with the package the resolve locked for
/// it. Declarations without one are dropped: an optional dependency nothing turned on, or a
/// dependency for another platform that `--filter-platform` removed.
fn match_declarations<'m>(
    metadata: &'m Metadata,
    index: &BTreeMap<&PackageId, usize>,
    from: usize,
    node: &cargo_metadata::Node,
) -> Vec<Decl<'m>> {
    let package = &metadata.packages[from];
    // Names other declarations really renamed to. `package = "<same name>"` (axum's dev
    // dependency on tower) is reported as a rename to its own name and must not count, or it
    // would hide the plain declaration of the same package.
    let renames: BTreeSet<(String, Kind)> = package
        .dependencies
        .iter()
        .filter_map(|d| {
            let rename = lib_name(d.rename.as_deref()?);
            (rename != lib_name(&d.name)).then(|| Some((rename, kind_of(&d.kind)?)))?
        })
        .collect();
    let mut decls = Vec::new();
    for dep in &package.dependencies {
        let Some(kind) = kind_of(&dep.kind) else {
            continue;
        };
        let platform = dep.target.as_ref().map(Platform::to_string);
        let mut candidates: Vec<(usize, &cargo_metadata::NodeDep)> = node
            .deps
            .iter()
            .filter_map(|nd| index.get(&nd.pkg).map(|&i| (i, nd)))
            .filter(|(i, nd)| {
                metadata.packages[*i].name.as_str() == dep.name
                    && nd.dep_kinds.iter().any(|k| {
                        k.kind == dep.kind && k.target.as_ref().map(Platform::to_string) == platform
                    })
            })
            .collect();
        match &dep.rename {
            Some(rename) => candidates.retain(|(_, nd)| nd.name == lib_name(rename)),
            // Not renamed: not the entry another declaration renamed.
            None => candidates.retain(|(_, nd)| !renames.contains(&(nd.name.clone(), kind))),
        }
        if candidates.len() > 1 {
            candidates.retain(|(i, _)| dep.req.matches(&metadata.packages[*i].version));
        }
        for (package, _) in candidates {
            decls.push(Decl { dep, kind, package });
        }
    }
    decls
}

/// Whether a target-specific dependency applies to the target. Conservative: without the
/// target's cfg values, a `cfg(...)` dependency the metadata kept is kept.
pub(crate) fn for_target(options: &Options, dep: &Dependency) -> bool {
    let (Some(platform), Some(target)) = (&dep.target, &options.target) else {
        return true;
    };
    match (platform, &target.cfg) {
        (Platform::Name(name), _) => *name == target.triple,
        (Platform::Cfg(_), Some(cfg)) => platform.matches(&target.triple, cfg),
        (Platform::Cfg(_), None) => true,
    }
}

fn kind_of(kind: &DependencyKind) -> Option<Kind> {
    match kind {
        DependencyKind::Normal => Some(Kind::Normal),
        DependencyKind::Build => Some(Kind::Build),
        DependencyKind::Development => Some(Kind::Dev),
        _ => None,
    }
}

/// The name a dependency's crate has in code, which is what the resolve's `deps[].name` is.
fn lib_name(name: &str) -> String {
    name.replace('-', "_")
}

impl<'m> Walker<'m> {
    /// The root's feature values for cargo's `--features`, `--all-features` and
    /// `--no-default-features`.
    fn requested(&self) -> Result<Vec<String>, Error> {
        let package = &self.metadata.packages[self.root];
        let features = &self.options.features;
        let optional: BTreeSet<&str> = package
            .dependencies
            .iter()
            .filter(|d| d.optional)
            .map(|d| d.rename.as_deref().unwrap_or(&d.name))
            .collect();
        let mut requested = Vec::new();
        if features.all {
            requested.extend(package.features.keys().cloned());
            requested.extend(optional.iter().map(|d| format!("dep:{d}")));
        }
        if features.default && package.features.contains_key("default") {
            requested.push("default".to_string());
        }
        for f in features.list.iter().flat_map(|f| f.split([',', ' '])) {
            // `<root>/feature` is how cargo names the root's feature from a workspace.
            let f = f.trim();
            let f = f
                .strip_prefix(package.name.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or(f);
            if f.is_empty() {
                continue;
            }
            let known = match value(f) {
                Value::Feature(name) => {
                    package.features.contains_key(name) || optional.contains(name)
                }
                Value::Dep(_) => false,
                Value::DepFeature { dep, .. } => {
                    package.dependencies.iter().any(|d| Self::name_of(d) == dep)
                }
            };
            if !known {
                return Err(Error::UnknownFeature {
                    package: package.name.to_string(),
                    feature: f.to_string(),
                    available: package
                        .features
                        .keys()
                        .map(String::as_str)
                        .chain(optional.iter().copied())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            requested.push(f.to_string());
        }
        Ok(requested)
    }

    /// The declarations of `package` that are built in context `fk`, each with the context
    /// its package is built in.
    fn deps(&self, package: usize, fk: For) -> Vec<(&'m Dependency, Kind, usize, For)> {
        self.decls[package]
            .iter()
            .filter(|d| match d.kind {
                Kind::Normal | Kind::Build => true,
                // Only the root's dev-dependencies are ever built, and only for its tests.
                Kind::Dev => self.options.dev && package == self.root && fk == For::Target,
            })
            .filter(|d| d.kind == Kind::Build || fk == For::Host || for_target(self.options, d.dep))
            .map(|d| {
                let dep_fk =
                    if fk == For::Host || d.kind == Kind::Build || self.proc_macro[d.package] {
                        For::Host
                    } else {
                        For::Target
                    };
                (d.dep, d.kind, d.package, dep_fk)
            })
            .collect()
    }

    fn name_of(dep: &Dependency) -> &str {
        dep.rename.as_deref().unwrap_or(&dep.name)
    }

    /// The features a dependency declaration asks for on its package.
    fn requested_by(&self, dep: &'m Dependency, package: usize) -> Vec<Value<'m>> {
        let mut values: Vec<Value> = dep.features.iter().map(|f| value(f)).collect();
        if dep.uses_default_features
            && self.metadata.packages[package]
                .features
                .contains_key("default")
        {
            values.push(Value::Feature("default"));
        }
        values
    }

    fn activate_package(&mut self, package: usize, fk: For, values: &[Value]) {
        self.features.entry((package, fk)).or_default();
        for v in values {
            self.activate_value(package, fk, v);
        }
        if !self.processed.insert((package, fk)) {
            return;
        }
        for (dep, kind, dep_package, dep_fk) in self.deps(package, fk) {
            // Optional dependencies are turned on by features (activate_value).
            if dep.optional {
                continue;
            }
            self.edges
                .insert(((package, fk), (dep_package, dep_fk), kind));
            let values = self.requested_by(dep, dep_package);
            self.activate_package(dep_package, dep_fk, &values);
        }
    }

    fn activate_value(&mut self, package: usize, fk: For, v: &Value) {
        match *v {
            Value::Feature(name) => self.activate_feature(package, fk, name),
            Value::Dep(name) => self.activate_dependency(package, fk, name),
            Value::DepFeature { dep, feature, weak } => {
                self.activate_dep_feature(package, fk, dep, feature, weak)
            }
        }
    }

    fn activate_feature(&mut self, package: usize, fk: For, name: &str) {
        if !self
            .features
            .entry((package, fk))
            .or_default()
            .insert(name.to_string())
        {
            return;
        }
        let metadata: &'m Metadata = self.metadata;
        let p = &metadata.packages[package];
        match p.features.get(name) {
            Some(values) => {
                for v in values {
                    self.activate_value(package, fk, &value(v));
                }
            }
            // cargo metadata lists the implicit feature of an optional dependency; older
            // cargo did not, so treat a missing one as `dep:<name>`.
            None if p
                .dependencies
                .iter()
                .any(|d| d.optional && Self::name_of(d) == name) =>
            {
                self.activate_dependency(package, fk, name)
            }
            None => {}
        }
    }

    fn activate_dependency(&mut self, package: usize, fk: For, name: &str) {
        self.activated_deps
            .entry((package, fk))
            .or_default()
            .insert(name.to_string());
        let deferred = self
            .deferred
            .remove(&(package, fk, name.to_string()))
            .unwrap_or_default();
        for (dep, kind, dep_package, dep_fk) in self.deps(package, fk) {
            if Self::name_of(dep) != name {
                continue;
            }
            for feature in &deferred {
                self.activate_value(dep_package, dep_fk, &value(feature));
            }
            self.edges
                .insert(((package, fk), (dep_package, dep_fk), kind));
            let values = self.requested_by(dep, dep_package);
            self.activate_package(dep_package, dep_fk, &values);
        }
    }

    fn activate_dep_feature(
        &mut self,
        package: usize,
        fk: For,
        dep_name: &str,
        feature: &str,
        weak: bool,
    ) {
        for (dep, _, dep_package, dep_fk) in self.deps(package, fk) {
            if Self::name_of(dep) != dep_name {
                continue;
            }
            if dep.optional {
                let on = self
                    .activated_deps
                    .get(&(package, fk))
                    .is_some_and(|d| d.contains(dep_name));
                if weak && !on {
                    self.deferred
                        .entry((package, fk, dep_name.to_string()))
                        .or_default()
                        .insert(feature.to_string());
                    continue;
                }
                self.activate_dependency(package, fk, dep_name);
                if !weak {
                    // `dep/feature` also turns on a feature named like the dependency, if
                    // there is one (cargo's behavior from before `dep:` existed).
                    self.activate_feature(package, fk, dep_name);
                }
            }
            self.activate_value(dep_package, dep_fk, &value(feature));
        }
    }

    /// Everything reachable from the root over the edges of the kinds asked for. Edges were
    /// recorded per context, so a package whose host build turned on an optional dependency
    /// (through a build-dependency) does not bring it into the target build.
    fn reachable(&self) -> Walked {
        let wanted = |kind: Kind| match kind {
            Kind::Normal => true,
            Kind::Build => self.options.build,
            Kind::Dev => self.options.dev,
        };
        let mut out: BTreeMap<(usize, For), Vec<(usize, For)>> = BTreeMap::new();
        for &(from, to, kind) in &self.edges {
            if wanted(kind) {
                out.entry(from).or_default().push(to);
            }
        }
        let start = (self.root, For::Target);
        let mut seen = BTreeSet::from([start]);
        let mut stack = vec![start];
        let mut edges = BTreeSet::new();
        while let Some(node) = stack.pop() {
            for &next in out.get(&node).into_iter().flatten() {
                edges.insert((node.0, next.0));
                if seen.insert(next) {
                    stack.push(next);
                }
            }
        }
        Walked {
            root: self.root,
            packages: seen.into_iter().map(|(p, _)| p).collect(),
            // A package's edge to itself can only come from a dev-dependency cycle.
            edges: edges.into_iter().filter(|(a, b)| a != b).collect(),
        }
    }
}
