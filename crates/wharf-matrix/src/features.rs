//! Feature sets of one package: `default`, `each`, `powerset` and explicit `sets`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::Features;
use crate::{Error, PackageInfo};

/// The most feature sets one package may produce: a powerset without a depth grows as 2^n,
/// and a matrix of millions of cells is a config mistake, not a plan.
pub const MAX_SETS: usize = 65_536;

/// The features of one cell: exactly `features`, plus the default ones unless
/// `no_default_features`. `features` is sorted, without duplicates and without `"default"`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FeatureSet {
    pub no_default_features: bool,
    pub features: Vec<String>,
}

impl FeatureSet {
    /// The default features only (what plain `cargo test` builds).
    pub fn default_features() -> FeatureSet {
        FeatureSet {
            no_default_features: false,
            features: Vec::new(),
        }
    }

    /// Exactly the features listed; `"default"` among them turns the default features on.
    pub fn exactly<S: AsRef<str>>(list: impl IntoIterator<Item = S>) -> FeatureSet {
        let mut no_default_features = true;
        let mut features = BTreeSet::new();
        for f in list {
            match f.as_ref() {
                "default" => no_default_features = false,
                f => {
                    features.insert(f.to_string());
                }
            }
        }
        FeatureSet {
            no_default_features,
            features: features.into_iter().collect(),
        }
    }

    /// The features as a list that [`FeatureSet::exactly`] turns back into this set.
    pub fn to_list(&self) -> Vec<String> {
        let mut list = self.features.clone();
        if !self.no_default_features {
            list.insert(0, "default".into());
        }
        list
    }

    /// For cell ids: `no-default`, `default`, `a+b`, `default+a`.
    pub fn label(&self) -> String {
        match (self.no_default_features, self.features.is_empty()) {
            (true, true) => "no-default".into(),
            (false, true) => "default".into(),
            (true, false) => self.features.join("+"),
            (false, false) => format!("default+{}", self.features.join("+")),
        }
    }

    /// True when the cell's features include every feature of `list` (`"default"`: the
    /// default features are on).
    pub(crate) fn contains_all(&self, list: &[String]) -> bool {
        list.iter().all(|f| match f.as_str() {
            "default" => !self.no_default_features,
            f => self.features.iter().any(|g| g == f),
        })
    }
}

/// A package's features as `cargo metadata` reports them, with what each one enables.
pub(crate) struct Catalog<'a> {
    package: &'a PackageInfo,
    /// For each feature, the features of this package it turns on, itself not included.
    enables: BTreeMap<&'a str, BTreeSet<&'a str>>,
}

impl<'a> Catalog<'a> {
    pub(crate) fn new(package: &'a PackageInfo) -> Catalog<'a> {
        let enables = package
            .features
            .keys()
            .map(|f| (f.as_str(), enables(package, f)))
            .collect();
        Catalog { package, enables }
    }

    /// `"default"` is always known: `--features default` and the default features are the
    /// same thing, and a package without a `default` feature simply has none.
    fn is_known(&self, feature: &str) -> bool {
        feature == "default" || self.package.features.contains_key(feature)
    }

    /// Errors unless every feature is known, naming the package and listing its features.
    pub(crate) fn check<'s>(
        &self,
        list: impl IntoIterator<Item = &'s String>,
    ) -> Result<(), Error> {
        for feature in list {
            if !self.is_known(feature) {
                return Err(Error::UnknownFeature {
                    package: self.package.name.clone(),
                    feature: feature.clone(),
                    known: known_list(self.package),
                });
            }
        }
        Ok(())
    }

    /// An optional dependency's implicit feature (`name = ["dep:name"]`). cargo lists it only
    /// when no feature names the dependency as `dep:name`, so a shadowed one never shows up.
    fn is_optional_dep(&self, feature: &str) -> bool {
        self.package
            .features
            .get(feature)
            .is_some_and(|v| v.len() == 1 && v[0].strip_prefix("dep:") == Some(feature))
    }

    /// The features of this package that `feature` turns on, itself not included.
    fn enables(&self, feature: &str) -> impl Iterator<Item = &'a str> + '_ {
        self.enables.get(feature).into_iter().flatten().copied()
    }

    /// The feature sets `features` asks for, in a fixed order, without duplicates.
    pub(crate) fn sets(&self, features: &Features) -> Result<Vec<FeatureSet>, Error> {
        match features {
            Features::Default => Ok(vec![FeatureSet::default_features()]),
            Features::Sets { sets, always } => {
                self.check(always)?;
                let mut out = Vec::new();
                for set in sets {
                    self.check(set)?;
                    push_unique(&mut out, FeatureSet::exactly(set.iter().chain(always)));
                }
                Ok(out)
            }
            Features::Each {
                groups,
                skip,
                always,
                optional_deps,
            } => self.powerset(&Powerset {
                depth: Some(1),
                groups,
                exclusive: &[],
                skip,
                always,
                optional_deps: *optional_deps,
            }),
            Features::Powerset {
                depth,
                groups,
                exclusive,
                skip,
                always,
                optional_deps,
            } => self.powerset(&Powerset {
                depth: *depth,
                groups,
                exclusive,
                skip,
                always,
                optional_deps: *optional_deps,
            }),
        }
    }

    fn powerset(&self, p: &Powerset<'_>) -> Result<Vec<FeatureSet>, Error> {
        let name = &self.package.name;
        for list in p
            .groups
            .iter()
            .chain(p.exclusive)
            .map(Vec::as_slice)
            .chain([p.skip, p.always])
        {
            self.check(list)?;
        }
        let elements = self.elements(p)?;
        let always_on = self.turned_on(p.always);
        // An element that the always-on features already turn on adds nothing.
        let elements: Vec<Element> = elements
            .into_iter()
            .filter(|e| !e.members.iter().all(|m| always_on.contains(m.as_str())))
            .collect();
        let depth = p.depth.unwrap_or(elements.len()).min(elements.len());
        let count = combinations_up_to(elements.len(), depth);
        if count.is_none_or(|c| c > MAX_SETS as u128) {
            return Err(Error::TooManySets {
                package: name.clone(),
                elements: elements.len(),
                depth,
                count,
            });
        }
        // Features that must go together but may not: every cell with them would be skipped.
        let together = std::iter::once(("always", p.always))
            .chain(p.groups.iter().map(|g| ("a group", g.as_slice())));
        for (what, list) in together {
            let on = self.turned_on(list);
            for set in p.exclusive {
                let hits: Vec<String> = set
                    .iter()
                    .filter(|f| on.contains(f.as_str()))
                    .cloned()
                    .collect();
                if hits.len() > 1 {
                    return Err(Error::ExclusiveTogether {
                        package: name.clone(),
                        what,
                        features: hits,
                    });
                }
            }
        }

        let mut out = Vec::new();
        for size in 0..=depth {
            for combo in Combinations::new(elements.len(), size) {
                let chosen: Vec<&Element> = combo.iter().map(|&i| &elements[i]).collect();
                if redundant(&chosen) || self.breaks_exclusive(&chosen, p) {
                    continue;
                }
                let features = chosen.iter().flat_map(|e| &e.members).chain(p.always);
                push_unique(&mut out, FeatureSet::exactly(features));
            }
        }
        Ok(out)
    }

    /// What the powerset varies: each feature not skipped, held on or grouped, and each
    /// group as one, sorted by name.
    fn elements(&self, p: &Powerset<'_>) -> Result<Vec<Element>, Error> {
        let name = &self.package.name;
        let mut grouped = BTreeSet::new();
        for group in p.groups {
            for f in group {
                if !grouped.insert(f.as_str()) {
                    return Err(Error::Overlap {
                        package: name.clone(),
                        feature: f.clone(),
                        first: "a group",
                        second: "another group",
                    });
                }
                for (list, key) in [(p.skip, "skip"), (p.always, "always")] {
                    if list.contains(f) {
                        return Err(Error::Overlap {
                            package: name.clone(),
                            feature: f.clone(),
                            first: "a group",
                            second: key,
                        });
                    }
                }
            }
        }
        let mut elements: Vec<Element> = self
            .package
            .features
            .keys()
            .filter(|f| {
                !grouped.contains(f.as_str())
                    && !p.skip.contains(f)
                    && !p.always.contains(f)
                    && (p.optional_deps || !self.is_optional_dep(f))
            })
            .map(|f| Element::new(self, vec![f.clone()]))
            .collect();
        elements.extend(
            p.groups
                .iter()
                .filter(|g| !g.is_empty())
                .map(|g| Element::new(self, g.clone())),
        );
        elements.sort_by(|a, b| a.members.cmp(&b.members));
        Ok(elements)
    }

    /// The features a build with `features` turns on: them and all they enable.
    fn turned_on<'s>(
        &'s self,
        features: impl IntoIterator<Item = &'s String>,
    ) -> BTreeSet<&'s str> {
        features
            .into_iter()
            .flat_map(|f| self.enables(f).chain([f.as_str()]))
            .collect()
    }

    /// The combination turns on two features of one exclusive set, counting what each
    /// feature enables (`rt = ["tokio"]` and `async-std` are as exclusive as `tokio` and
    /// `async-std`).
    fn breaks_exclusive(&self, chosen: &[&Element], p: &Powerset<'_>) -> bool {
        let on = self.turned_on(chosen.iter().flat_map(|e| &e.members).chain(p.always));
        p.exclusive
            .iter()
            .any(|set| set.iter().filter(|f| on.contains(f.as_str())).count() > 1)
    }
}

/// Features of `package` that `feature` turns on, directly or through others, not counting
/// itself. `dep:x` is a dependency, not a feature; `x/f` turns on feature `x` when `x` is an
/// optional dependency's implicit feature (cargo's rule); `x?/f` turns on nothing here.
fn enables<'a>(package: &'a PackageInfo, feature: &str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![feature];
    while let Some(current) = todo.pop() {
        let Some(values) = package.features.get(current) else {
            continue;
        };
        for value in values {
            if value.starts_with("dep:") || value.contains("?/") {
                continue;
            }
            let name = value.split_once('/').map_or(value.as_str(), |(dep, _)| dep);
            if let Some((key, _)) = package.features.get_key_value(name)
                && key != feature
                && seen.insert(key.as_str())
            {
                todo.push(key.as_str());
            }
        }
    }
    seen
}

/// `each` is a powerset of depth one without exclusive sets.
struct Powerset<'c> {
    depth: Option<usize>,
    groups: &'c [Vec<String>],
    exclusive: &'c [Vec<String>],
    skip: &'c [String],
    always: &'c [String],
    optional_deps: bool,
}

/// One thing the powerset varies: a feature, or a group of features that go together.
struct Element {
    members: Vec<String>,
    /// The features the members turn on.
    enables: BTreeSet<String>,
}

impl Element {
    fn new(catalog: &Catalog<'_>, mut members: Vec<String>) -> Element {
        members.sort();
        members.dedup();
        let enables = members
            .iter()
            .flat_map(|m| catalog.enables(m))
            .map(String::from)
            .collect();
        Element { members, enables }
    }
}

/// A combination where one element already turns on all of another builds the same as the
/// combination without the second, so cargo hack skips it and so does this.
fn redundant(chosen: &[&Element]) -> bool {
    chosen.iter().enumerate().any(|(i, a)| {
        chosen
            .iter()
            .enumerate()
            .any(|(j, b)| i != j && b.members.iter().all(|m| a.enables.contains(m)))
    })
}

fn push_unique(out: &mut Vec<FeatureSet>, set: FeatureSet) {
    if !out.contains(&set) {
        out.push(set);
    }
}

fn known_list(package: &PackageInfo) -> String {
    if package.features.is_empty() {
        "it has no features".into()
    } else {
        let names: Vec<&str> = package.features.keys().map(String::as_str).collect();
        format!("known: {}", names.join(", "))
    }
}

/// The number of combinations of at most `depth` of `n` elements, or `None` past `u128`.
fn combinations_up_to(n: usize, depth: usize) -> Option<u128> {
    let mut total: u128 = 0;
    let mut c: u128 = 1;
    for k in 0..=depth.min(n) {
        if k > 0 {
            // C(n, k) = C(n, k-1) * (n-k+1) / k, exact at every step.
            c = c.checked_mul((n - k + 1) as u128)? / k as u128;
        }
        total = total.checked_add(c)?;
    }
    Some(total)
}

/// k-combinations of 0..n in lexicographic order.
struct Combinations {
    n: usize,
    indices: Vec<usize>,
    done: bool,
}

impl Combinations {
    fn new(n: usize, k: usize) -> Combinations {
        Combinations {
            n,
            indices: (0..k).collect(),
            done: k > n,
        }
    }
}

impl Iterator for Combinations {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        if self.done {
            return None;
        }
        let current = self.indices.clone();
        let k = self.indices.len();
        // Advance the rightmost index that can still move, and reset those after it.
        match (0..k).rev().find(|&i| self.indices[i] < self.n - k + i) {
            Some(i) => {
                self.indices[i] += 1;
                for j in i + 1..k {
                    self.indices[j] = self.indices[j - 1] + 1;
                }
            }
            None => self.done = true,
        }
        Some(current)
    }
}
