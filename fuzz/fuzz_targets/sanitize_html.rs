//! Markdown rendering and HTML sanitising: whatever goes in, no script,
//! style, iframe or object element, no event handler and no `javascript:`
//! link comes out; and the text the inbox takes from sanitised HTML without
//! parsing it again is what stripping its tags gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin::alerts::markdown::{render, sanitize, strip_tags, text_of_sanitized};

/// The attributes of one tag's inside (`a href="…" rel="…"`) as
/// (name, value); ammonia always writes values in double quotes.
fn attributes(inside: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = inside
        .split_once(char::is_whitespace)
        .map_or("", |(_, r)| r);
    while let Some((name, after)) = rest.split_once('=') {
        let after = after.trim_start().strip_prefix('"').unwrap_or(after);
        let (value, tail) = after.split_once('"').unwrap_or((after, ""));
        out.push((name.trim().to_string(), value.to_string()));
        rest = tail;
    }
    out
}

/// The inside of every tag (`a href="…"`), quotes respected: ammonia's
/// output holds a raw `<` only where a tag starts, but attribute values
/// may hold `<` and `>`.
fn tags(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut quoted = false;
    for c in html.chars() {
        match (&mut current, c) {
            (None, '<') => current = Some(String::new()),
            (None, _) => {}
            (Some(tag), '"') => {
                quoted = !quoted;
                tag.push(c);
            }
            (Some(_), '>') if !quoted => out.extend(current.take()),
            (Some(tag), _) => tag.push(c),
        }
    }
    out
}

fn assert_harmless(html: &str, input: &str) {
    for inside in tags(&html.to_ascii_lowercase()) {
        let name = inside.split_whitespace().next().unwrap_or_default();
        assert!(
            !["script", "style", "iframe", "object", "embed", "form"].contains(&name),
            "<{name}> survived {input:?}: {html}"
        );
        for (attr, value) in attributes(&inside) {
            assert!(
                !attr.starts_with("on"),
                "handler {attr} survived {input:?}: {html}"
            );
            let value = value.trim_start();
            assert!(
                !value.starts_with("javascript:") && !value.starts_with("data:"),
                "{attr}={value} survived {input:?}: {html}"
            );
        }
    }
}

fuzz_target!(|input: &str| {
    let clean = sanitize(input);
    assert_harmless(&clean, input);
    assert_eq!(
        text_of_sanitized(&clean),
        strip_tags(&clean),
        "text of {clean:?} (from {input:?})"
    );
    assert_harmless(&render(input), input);
});
