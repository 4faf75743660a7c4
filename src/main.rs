//! The `switchyard` command: `switchyard --help`, or see `switchyard::cli`.

fn main() -> std::process::ExitCode {
    switchyard::cli::main()
}
