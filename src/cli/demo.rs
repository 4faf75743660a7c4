//! `switchyard demo` (and `serve --demo`): the gateway over simulated providers.

use crate::demo::Demo;

/// Starts the simulated providers, prints what they are and what to try, and serves until
/// Ctrl-C or SIGTERM.
pub(super) async fn run(listen: Option<&str>) -> Result<(), String> {
    let demo = Demo::start()
        .await
        .map_err(|e| format!("cannot start the simulated providers: {e}"))?;
    println!("switchyard demo: simulated providers inside this process; no key needed, and");
    println!("nothing leaves this machine. The gateway in front of them is the real one.\n");
    print!("{}", demo.summary());
    println!();
    let listener = super::serve::bind(listen, demo.gateway()).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("listening: {e}"))?
        .to_string();
    println!("\nTry (each answer names its provider; the log below shows every simulated call):");
    for line in Demo::curl_lines(&addr) {
        println!("  {line}");
    }
    println!();
    super::serve::serve(demo.into_gateway(), listener).await
}
