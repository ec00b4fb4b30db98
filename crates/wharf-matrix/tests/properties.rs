//! Properties of sharding, the feature powerset and planning, for generated inputs.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use wharf_matrix::{
    Cell, Command, Config, Features, Package, PackageInfo, Plan, Shard, plan, shard,
};

const HOST: &str = "x86_64-unknown-linux-gnu";

fn synthetic_plan(len: usize) -> Plan {
    Plan {
        cells: (0..len)
            .map(|i| Cell {
                package: format!("p{i}"),
                features: Vec::new(),
                no_default_features: false,
                toolchain: "stable".into(),
                target: HOST.into(),
                target_flag: true,
                profile: "dev".into(),
                command: Command::Test,
            })
            .collect(),
    }
}

proptest! {
    #[test]
    fn every_cell_lands_in_exactly_one_shard_and_sizes_differ_by_at_most_one(
        len in 0usize..400,
        n in 1usize..=64,
    ) {
        let plan = synthetic_plan(len);
        let shards: Vec<Vec<Cell>> = (1..=n)
            .map(|k| shard(&plan, Shard::new(k, n).unwrap()))
            .collect();
        // Concatenated in shard order, the shards are the plan: each cell once, none lost.
        let joined: Vec<Cell> = shards.iter().flatten().cloned().collect();
        prop_assert_eq!(&joined, &plan.cells);
        let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        prop_assert!(max - min <= 1, "sizes {:?}", sizes);
        // Parsing what Display prints gives the same shard.
        let last = Shard::new(n, n).unwrap();
        prop_assert_eq!(Shard::parse(&last.to_string()).unwrap(), last);
    }
}

/// A generated package and a powerset over its features. Each feature has a role: varied
/// alone, in group 0 or 1, skipped, or always on. Features enable only lower-numbered ones
/// (cargo rejects cycles).
#[derive(Debug, Clone)]
struct Case {
    package: PackageInfo,
    depth: Option<usize>,
    groups: Vec<Vec<String>>,
    exclusive: Vec<Vec<String>>,
    skip: Vec<String>,
    always: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Free,
    Group(usize),
    Skip,
    Always,
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        6 => Just(Role::Free),
        2 => (0usize..2).prop_map(Role::Group),
        1 => Just(Role::Skip),
        1 => Just(Role::Always),
    ]
}

fn case(with_enables: bool) -> impl Strategy<Value = Case> {
    (0usize..9)
        .prop_flat_map(move |m| {
            let edges = if with_enables { 0..=m * m } else { 0..=0 };
            (
                Just(m),
                prop::collection::vec(role(), m),
                prop::collection::vec((0..m.max(1), 0..m.max(1)), edges),
                prop::collection::vec(prop::collection::vec(0..m.max(1), 2..4), 0..3),
                prop::option::of(0usize..5),
            )
        })
        .prop_map(|(m, roles, edges, exclusive, depth)| {
            let name = |i: usize| format!("f{i}");
            let mut features: BTreeMap<String, Vec<String>> =
                (0..m).map(|i| (name(i), Vec::new())).collect();
            for (a, b) in edges {
                if b < a {
                    features.get_mut(&name(a)).unwrap().push(name(b));
                }
            }
            let with =
                |r: Role| -> Vec<String> { (0..m).filter(|&i| roles[i] == r).map(name).collect() };
            let groups: Vec<Vec<String>> = (0..2)
                .map(|g| with(Role::Group(g)))
                .filter(|g| !g.is_empty())
                .collect();
            let always = with(Role::Always);
            // A set two of whose members must go together (always, one group) is a config
            // error; leave such sets out here (a unit test covers the error).
            let exclusive = exclusive
                .into_iter()
                .map(|set| {
                    set.into_iter()
                        .filter(|&i| i < m)
                        .map(name)
                        .collect::<BTreeSet<_>>()
                })
                .filter(|set| set.len() >= 2)
                .map(|set| set.into_iter().collect::<Vec<_>>())
                .filter(|set| {
                    groups.iter().chain([&always]).all(|together| {
                        let on = turned_on(&features, together);
                        set.iter().filter(|f| on.contains(*f)).count() < 2
                    })
                })
                .collect();
            Case {
                package: PackageInfo {
                    name: "p".into(),
                    features,
                    rust_version: None,
                },
                depth,
                groups,
                exclusive,
                skip: with(Role::Skip),
                always,
            }
        })
}

/// `features` and everything they enable, transitively.
fn turned_on(map: &BTreeMap<String, Vec<String>>, features: &[String]) -> BTreeSet<String> {
    let mut on = BTreeSet::new();
    let mut todo: Vec<String> = features.to_vec();
    while let Some(f) = todo.pop() {
        if on.insert(f.clone()) {
            todo.extend(map.get(&f).into_iter().flatten().cloned());
        }
    }
    on
}

fn powerset_config(case: &Case) -> Config {
    Config {
        packages: vec![Package {
            name: "p".into(),
            features: Features::Powerset {
                depth: case.depth,
                groups: case.groups.clone(),
                exclusive: case.exclusive.clone(),
                skip: case.skip.clone(),
                always: case.always.clone(),
                optional_deps: true,
            },
        }],
        ..Config::default()
    }
}

/// The feature sets of the powerset, as sets of names.
fn feature_sets(case: &Case) -> Vec<BTreeSet<String>> {
    let plan = plan(
        &powerset_config(case),
        std::slice::from_ref(&case.package),
        HOST,
    )
    .expect("a valid case plans");
    plan.cells
        .iter()
        .map(|c| {
            assert!(c.no_default_features, "no feature here is called default");
            c.features.iter().cloned().collect()
        })
        .collect()
}

proptest! {
    #[test]
    fn powerset_respects_depth_groups_exclusive_skip_and_always(case in case(true)) {
        let sets = feature_sets(&case);
        let unique: BTreeSet<&BTreeSet<String>> = sets.iter().collect();
        prop_assert_eq!(unique.len(), sets.len(), "duplicates in {:?}", sets);
        prop_assert!(sets.iter().any(|s| s.iter().all(|f| case.always.contains(f))),
            "the set of no varied features is always there");
        for set in &sets {
            // Depth: varied features alone count one each, a group counts once.
            let singles = set.iter().filter(|f| !case.always.contains(f) && !case.groups.iter().any(|g| g.contains(f))).count();
            let groups = case.groups.iter().filter(|g| g.iter().any(|f| set.contains(f))).count();
            if let Some(depth) = case.depth {
                prop_assert!(singles + groups <= depth, "{:?} is deeper than {}", set, depth);
            }
            for group in &case.groups {
                let on = group.iter().filter(|f| set.contains(*f)).count();
                prop_assert!(on == 0 || on == group.len(), "{:?} splits group {:?}", set, group);
            }
            // Not two of one exclusive set, neither listed nor turned on by another feature.
            let list: Vec<String> = set.iter().cloned().collect();
            let on = turned_on(&case.package.features, &list);
            for exclusive in &case.exclusive {
                let listed = exclusive.iter().filter(|f| set.contains(*f)).count();
                prop_assert!(listed <= 1, "{:?} holds two of {:?}", set, exclusive);
                let enabled = exclusive.iter().filter(|f| on.contains(*f)).count();
                prop_assert!(enabled <= 1, "{:?} turns on two of {:?}", set, exclusive);
            }
            for skipped in &case.skip {
                prop_assert!(!set.contains(skipped), "{:?} holds skipped {}", set, skipped);
            }
            for on in &case.always {
                prop_assert!(set.contains(on), "{:?} lacks always-on {}", set, on);
            }
        }
    }

    /// Without features enabling each other nothing is redundant, so the powerset is every
    /// combination of at most `depth` elements with no two exclusive features: counted here
    /// by brute force over bit masks, independently of the crate's enumeration.
    #[test]
    fn powerset_without_implications_is_complete(case in case(false)) {
        let sets = feature_sets(&case);
        let mut elements: Vec<Vec<String>> = case.groups.clone();
        for f in case.package.features.keys() {
            let taken = case.skip.contains(f) || case.always.contains(f) || case.groups.iter().any(|g| g.contains(f));
            if !taken {
                elements.push(vec![f.clone()]);
            }
        }
        let mut expected = 0;
        for mask in 0u32..(1 << elements.len()) {
            if case.depth.is_some_and(|d| mask.count_ones() as usize > d) {
                continue;
            }
            let on: BTreeSet<&String> = (0..elements.len())
                .filter(|i| mask & (1 << i) != 0)
                .flat_map(|i| &elements[i])
                .chain(&case.always)
                .collect();
            if case.exclusive.iter().all(|e| e.iter().filter(|f| on.contains(f)).count() <= 1) {
                expected += 1;
            }
        }
        prop_assert_eq!(sets.len(), expected);
    }
}

/// A few packages with a few features, a config over some of them, and the same packages in
/// another order.
fn workspace() -> impl Strategy<Value = (Vec<PackageInfo>, Config, Vec<PackageInfo>)> {
    let package = |i: usize| {
        (
            prop::collection::btree_set("[a-e]", 0..5),
            prop::option::of("1\\.[0-9]{2}"),
        )
            .prop_map(move |(features, rust_version)| PackageInfo {
                name: format!("pkg-{i}"),
                features: features.into_iter().map(|f| (f, Vec::new())).collect(),
                rust_version,
            })
    };
    (1usize..6)
        .prop_flat_map(move |n| {
            let packages: Vec<_> = (0..n).map(package).collect();
            (
                packages,
                prop::collection::vec((0..n, 0usize..4), 0..5),
                any::<bool>(),
            )
        })
        .prop_flat_map(|(packages, picks, msrv)| {
            let entries = picks
                .into_iter()
                .map(|(i, mode)| {
                    let features = match mode {
                        0 => Features::Default,
                        1 => Features::Each {
                            groups: vec![],
                            skip: vec![],
                            always: vec![],
                            optional_deps: true,
                        },
                        2 => Features::Powerset {
                            depth: Some(2),
                            groups: vec![],
                            exclusive: vec![],
                            skip: vec![],
                            always: vec![],
                            optional_deps: true,
                        },
                        _ => Features::Sets {
                            sets: vec![vec![], vec!["default".into()]],
                            always: vec![],
                        },
                    };
                    Package {
                        name: packages[i].name.clone(),
                        features,
                    }
                })
                .collect();
            let mut toolchains = vec!["stable".to_string(), "nightly".to_string()];
            if msrv && packages.iter().all(|p| p.rust_version.is_some()) {
                toolchains.push("msrv".into());
            }
            let config = Config {
                toolchains,
                packages: entries,
                ..Config::default()
            };
            (
                Just(packages.clone()),
                Just(config),
                Just(packages).prop_shuffle(),
            )
        })
}

proptest! {
    #[test]
    fn plan_does_not_depend_on_the_order_of_packages((packages, config, shuffled) in workspace()) {
        let first = plan(&config, &packages, HOST).unwrap();
        let second = plan(&config, &shuffled, HOST).unwrap();
        prop_assert_eq!(&first, &second);
        // And the same input twice is the same plan, down to the JSON bytes.
        let again = plan(&config, &packages, HOST).unwrap();
        prop_assert_eq!(serde_json::to_string(&first).unwrap(), serde_json::to_string(&again).unwrap());
        let ids: BTreeSet<String> = first.cells.iter().map(Cell::id).collect();
        prop_assert_eq!(ids.len(), first.cells.len(), "cell ids are unique");
    }
}
