//! Markdown to sanitised HTML (pulldown-cmark, then ammonia), and the
//! sanitiser for HTML that arrives from other servers.

use pulldown_cmark::{html, Options, Parser};

/// Renders Markdown and sanitises the result.
pub fn render(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TABLES);
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(markdown, options));
    sanitize(&out)
}

/// Sanitises HTML from anywhere: only harmless tags and attributes survive,
/// links get `rel="noopener noreferrer nofollow"`.
pub fn sanitize(html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(html)
        .to_string()
}

/// Escapes text for use inside HTML.
pub fn escape(text: &str) -> String {
    html_escape::encode_text(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_and_scripts_are_removed() {
        let html = render("**Free** [Ayşe](https://x.example)\n\n<script>alert(1)</script><img src=x onerror=alert(1)>");
        assert!(html.contains("<strong>Free</strong>"));
        assert!(html.contains("href=\"https://x.example\""));
        assert!(html.contains("rel=\"noopener noreferrer nofollow\""));
        assert!(!html.contains("<script"));
        assert!(!html.contains("onerror"));
    }

    #[test]
    fn javascript_links_are_dropped() {
        let html = sanitize("<a href=\"javascript:alert(1)\">x</a>");
        assert!(!html.contains("javascript:"));
    }
}
