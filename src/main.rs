//! The `switchyard` command: `switchyard --help`, or see `switchyard::cli`.

// The gateway allocates a few dozen small blocks per request on one worker thread and frees many
// of them on another; glibc's allocator takes its slow, locked paths for that pattern under
// load, mimalloc's thread-local free lists do not (docs/performance.md, run 17). A library
// user's own binary picks its own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchyard::cli::main()
}
