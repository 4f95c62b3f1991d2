//! Test-only stand-in for `corral shim`: the integration tests launch containers through
//! it, as the daemon does through the `corral` binary.

fn main() {
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(command) if command == "shim" => {
            std::process::exit(corral_runtime::shim::shim_main(args))
        }
        _ => {
            eprintln!("usage: corral-test-shim shim <shim arguments>");
            std::process::exit(2);
        }
    }
}
