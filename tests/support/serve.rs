//! The `switchyard` binary started as a process (feature `cli`, which builds it).

/// Starts the `switchyard` binary (`serve --listen 127.0.0.1:0 --config <config>`) with the
/// environment variables `vars`, and waits up to `start` for the address it prints.
pub fn spawn_serve(
    config: &std::path::Path,
    vars: &[(&str, &str)],
    start: std::time::Duration,
) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("switchyard listening on http://") {
                let _ = tx.send(rest.trim_end_matches("/api/v1").to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(start)
        .expect("the gateway printed its address");
    (child, addr.parse().unwrap())
}
