//! `cargo xtask`: wharf's command line (`wharf::cli`) with this repository's pipelines
//! (`pipelines/`) and benchmarks (`wharf-bench`).

fn main() -> std::process::ExitCode {
    wharf::cli::App::new()
        .pipelines(wharf_pipelines::all())
        .commands::<wharf_bench::Bench>()
        .main()
}
