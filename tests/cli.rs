//! The `switchyard` binary's one-shot commands: `check` and `catalog import`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn switchyard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_the_example_config_and_lists_it() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/config/gateway.toml");
    let out = switchyard(&["check", "--config", config]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for needle in [
        "providers (2 of 2 enabled)",
        "acme/small",
        "acme/default → acme/small",
        "valid",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
}

#[test]
fn check_refuses_an_invalid_file_naming_the_cause() {
    let path = scratch("typo.toml");
    std::fs::write(&path, "[server]\nlisen = \"127.0.0.1:8080\"\n").unwrap();
    let out = switchyard(&["check", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("typo.toml:2:") && stderr.contains("unknown field `lisen`"),
        "{stderr}"
    );
}

#[test]
fn an_imported_catalogue_passes_check() {
    let dump = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/openrouter/models.json"
    );
    let toml = scratch("imported.toml");
    let out = switchyard(&[
        "catalog",
        "import",
        dump,
        "--output",
        toml.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("imported 3 models") && stderr.contains("skipped openrouter/auto"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&toml).unwrap();
    assert!(
        written.contains("pricing = { prompt = 3.0, completion = 15.0"),
        "{written}"
    );

    let out = switchyard(&["check", "--config", toml.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("models (3)") && stdout.contains("anthropic/claude-sonnet-4"),
        "{stdout}"
    );
}

#[test]
fn help_lists_every_subcommand() {
    let out = switchyard(&["--help"]);
    let stdout = text(&out.stdout);
    for cmd in ["serve", "demo", "check", "catalog"] {
        assert!(stdout.contains(cmd), "{cmd}: {stdout}");
    }
}
