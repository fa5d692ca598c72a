fn main() -> std::process::ExitCode {
    syncline::cli::main()
}
