//! `cargo xtask`: wharf's command line (`wharf::cli`) plus this repository's benchmarks.

fn main() -> std::process::ExitCode {
    wharf::cli::main_with::<wharf_bench::Bench>()
}
