//! Inbox JSON → activity: any body either parses into an activity or is
//! refused with an error, never a panic; a parsed Create/Update's Note
//! turns into alert values whose HTML is sanitised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin::federation::{
    inbox::{parse_activity, InboxActivity},
    objects::alert::{values_from_note, verify_note, NoteJson},
};

fn check_note(note: &NoteJson, actor: &url::Url) {
    let _ = verify_note(note, actor);
    let values = values_from_note(note, 1);
    let html = values.content_html.to_ascii_lowercase();
    assert!(!html.contains("<script"), "script survived: {html}");
}

fuzz_target!(|body: &[u8]| {
    let Ok(Some(activity)) = parse_activity(body) else {
        return;
    };
    match &activity {
        InboxActivity::CreateNote(c) => check_note(&c.object, c.actor.inner()),
        InboxActivity::UpdateNote(u) => check_note(&u.object, u.actor.inner()),
        _ => {}
    }
});
