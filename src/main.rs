fn main() {
    std::process::exit(rhaproxy::cli::main());
}
