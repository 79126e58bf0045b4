//! WebFinger `resource` parameter: an `acct:` URI or an actor URL resolves
//! to a plausible local username or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin::{
    config::Config,
    federation::{routes::webfinger_username, Urls},
};

fuzz_target!(|resource: &str| {
    let config = Config::default();
    let urls = Urls::new(&config);
    if let Ok(user) = webfinger_username(resource, &urls, &config.instance.domain) {
        assert!(!user.is_empty(), "empty username from {resource:?}");
        assert!(!user.contains('/'), "path in username from {resource:?}");
    }
});
