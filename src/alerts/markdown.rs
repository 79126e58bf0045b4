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
    // Built once: a builder is a dozen hash sets, costlier to make than a
    // short alert is to clean.
    static SANITIZER: std::sync::LazyLock<ammonia::Builder<'static>> =
        std::sync::LazyLock::new(|| {
            let mut builder = ammonia::Builder::default();
            builder.link_rel(Some("noopener noreferrer nofollow"));
            builder
        });
    SANITIZER.clean(html).to_string()
}

/// The text of some HTML with every tag removed (entities kept encoded).
pub fn strip_tags(html: &str) -> String {
    static STRIPPER: std::sync::LazyLock<ammonia::Builder<'static>> =
        std::sync::LazyLock::new(ammonia::Builder::empty);
    STRIPPER.clean(html).to_string()
}

/// The text of HTML that [`sanitize`] wrote, its tags removed and its
/// entities kept encoded: what [`strip_tags`] gives for it, without
/// parsing it a second time (the inbox does this for every alert). It
/// relies on the form html5ever's serialiser writes after ammonia: a raw
/// `<` only where a tag starts, attribute values always in double quotes
/// (they may hold `>`), no comment and no raw-text element. As a parser
/// does, it drops a newline that directly follows `<pre>` or `<listing>`.
/// For any other HTML use [`strip_tags`].
pub fn text_of_sanitized(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        let tag = &rest[start + 1..];
        let mut quoted = false;
        let end = tag.bytes().position(|b| {
            quoted ^= b == b'"';
            b == b'>' && !quoted
        });
        let Some(end) = end else {
            return text;
        };
        rest = &tag[end + 1..];
        let name = tag[..end].split([' ', '/']).next().unwrap_or_default();
        if ["pre", "listing"].contains(&name) {
            rest = rest.strip_prefix('\n').unwrap_or(rest);
        }
    }
    text.push_str(rest);
    text
}

/// Markdown for sanitised HTML, to edit an alert that arrived as HTML
/// (curating a member's alert). The title paragraph and the hashtag line
/// that Tocsin puts around a Note's text for Mastodon are dropped when
/// `title` is given.
pub fn from_html(html: &str, title: Option<&str>) -> String {
    let converted = htmd::HtmlToMarkdown::builder()
        .skip_tags(vec!["img"])
        .build()
        .convert(html)
        .unwrap_or_else(|_| crate::db::alerts::plain_text(html));
    let mut lines: Vec<&str> = converted.lines().collect();
    if let Some(title) = title {
        let heading = format!("**{}**", title.trim());
        if lines.first().is_some_and(|l| l.trim() == heading) {
            lines.remove(0);
        }
        let only_hashtags = |l: &str| {
            let l = l.trim();
            !l.is_empty()
                && l.split(") ")
                    .all(|part| part.trim_start().starts_with("[#") || part.trim().is_empty())
        };
        while lines
            .last()
            .is_some_and(|l| l.trim().is_empty() || only_hashtags(l))
        {
            lines.pop();
        }
    }
    lines.join("\n").trim().to_string()
}

/// Escapes text for use inside HTML.
pub fn escape(text: &str) -> String {
    html_escape::encode_text(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_turns_back_into_markdown_without_title_and_hashtags() {
        let html = "<p><strong>Radio shut</strong></p><p>Police closed <em>Radio Kano</em>.</p>\
                    <p>See <a href=\"https://x.example/a\">the statement</a>.</p>\
                    <p><a href=\"https://h.example/tags/nigeria\" class=\"mention hashtag\" rel=\"tag\">#<span>Nigeria</span></a></p>";
        let md = from_html(html, Some("Radio shut"));
        assert_eq!(
            md,
            "Police closed *Radio Kano*.\n\nSee [the statement](https://x.example/a)."
        );
        // The Markdown renders back to the same paragraphs.
        assert!(render(&md).contains("<em>Radio Kano</em>"));
        assert!(from_html("<p>a</p><p>b</p>", None).contains("a\n\nb"));
    }

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
    fn text_of_sanitized_html_is_what_stripping_its_tags_gives() {
        let inputs = [
            "<p>Benchmark alert: journalist detained, urgent appeal.</p>",
            "<p>a &amp; b &lt;c&gt; \u{a0}d</p><p>e</p>",
            "<a href=\"https://x.example/?q=1>2&r=\\\"\">link</a> after",
            "<pre>\n\nkept newline</pre><listing>\n\nx</listing>",
            "<p>a</p><pre>\nb</pre><br/><img src=\"https://x.example/i.png\" alt=\"<b>\">",
            "text <script>alert(1)</script> <!-- comment --> <b>bold</b",
            "unclosed <a href=\"x",
            "",
        ];
        for input in inputs {
            let clean = sanitize(input);
            assert_eq!(text_of_sanitized(&clean), strip_tags(&clean), "{clean:?}");
        }
        // A tag's end is found outside its quoted values.
        assert_eq!(text_of_sanitized("<a href=\"x>y\" rel=\"r\">t</a>u"), "tu");
        assert_eq!(text_of_sanitized("<pre>\nx</pre>"), "x");
    }

    #[test]
    fn javascript_links_are_dropped() {
        let html = sanitize("<a href=\"javascript:alert(1)\">x</a>");
        assert!(!html.contains("javascript:"));
    }
}
