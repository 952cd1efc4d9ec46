//! The host crate keeps its own copies of two small guest rules, so that it
//! publishes without the guest's source: the space-name rule (lease files
//! are named after spaces) and git's object id. They must agree exactly.

use decision_log::backend::{ObjectId, ObjectKind};
use dlog_guest::host::ObjectKind as GuestKind;

const NAMES: &[&str] = &[
    "team",
    "a",
    "0",
    "web-1.2_x",
    "",
    "Team",
    "-team",
    ".team",
    "_team",
    "te am",
    "te/am",
    "team..x",
    "team.",
    "team.lock",
    "tëam",
    "x.lock.y",
    "a.b",
];

#[test]
fn the_host_and_the_guest_accept_and_refuse_the_same_space_names_with_the_same_words() {
    let long = "a".repeat(65);
    let just = "a".repeat(64);
    for name in NAMES.iter().copied().chain([long.as_str(), just.as_str()]) {
        let host = decision_log::lease::check_space(name).map_err(|e| e.to_string());
        let guest = dlog_guest::model::validate_space(name).map_err(|e| e.to_string());
        assert_eq!(host, guest, "space name {name:?}");
    }
}

#[test]
fn the_host_and_the_guest_compute_the_same_object_ids() {
    let kinds = [
        (ObjectKind::Blob, GuestKind::Blob),
        (ObjectKind::Tree, GuestKind::Tree),
        (ObjectKind::Commit, GuestKind::Commit),
    ];
    for (host, guest) in kinds {
        for data in [&b""[..], b"{}", b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n", &[0u8, 255, 10][..]]
        {
            let ours = ObjectId::for_object(host, data);
            assert_eq!(ours.0, dlog_guest::gitobj::object_id_bytes(guest, data), "{host:?} {data:?}");
            assert_eq!(ours.to_hex(), dlog_guest::gitobj::to_hex(&ours.0));
        }
    }
    // git's well-known id of the empty tree.
    assert_eq!(
        ObjectId::for_object(ObjectKind::Tree, b"").to_hex(),
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    );
}
