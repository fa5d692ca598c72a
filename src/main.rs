/// mimalloc instead of the system allocator: the per-record path allocates many small strings
/// (parsed JSON, canonical records), and glibc's malloc/free was a quarter of the worker's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    syncline::allocator::tune();
    syncline::cli::main()
}
