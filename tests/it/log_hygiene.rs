//! No log call names a secret: every `tracing` macro in the source is read
//! and none may mention a password, token, key, cookie, CSRF value or an
//! e-mail address (docs/security.md, "Logs").

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

/// The text of every `tracing::…!(…)` call, up to its closing parenthesis.
fn log_calls(text: &str) -> Vec<String> {
    let mut calls = Vec::new();
    for level in ["trace", "debug", "info", "warn", "error"] {
        let needle = format!("tracing::{level}!(");
        let mut rest = text;
        while let Some(at) = rest.find(&needle) {
            let call = &rest[at..];
            let mut depth = 0usize;
            let end = call
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    c == ')' && depth == 0
                })
                .map_or(call.len(), |(i, _)| i + 1);
            calls.push(call[..end].to_string());
            rest = &call[end..];
        }
    }
    calls
}

#[test]
fn no_log_call_names_a_secret_or_an_email_address() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut calls = 0;
    for (file, text) in &files {
        for call in log_calls(text) {
            calls += 1;
            let lower = call.to_ascii_lowercase();
            for word in [
                "password",
                "token",
                "secret",
                "private_key",
                "private_pem",
                "cookie",
                "csrf",
                "authorization",
                "email",
                "e-mail",
                "mail_to",
                "recipient",
            ] {
                assert!(
                    !lower.contains(word),
                    "{file}: log call mentions {word}: {call}"
                );
            }
        }
    }
    assert!(
        calls > 20,
        "the scan found only {calls} log calls: is it reading src/?"
    );
}
