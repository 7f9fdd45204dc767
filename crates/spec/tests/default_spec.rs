//! default_spec must produce what `runc spec` (runc 1.1.5) writes.

mod common;

use common::{runc_config, runc_rootless_config};
use husk_spec::{default_spec, Spec};
use serde_json::Value;

/// Capability lists are sets in oci-spec, so their serialized order is arbitrary.
fn sort_capabilities(config: &mut Value) {
    if let Some(caps) = config.pointer_mut("/process/capabilities") {
        for list in caps.as_object_mut().unwrap().values_mut() {
            list.as_array_mut()
                .unwrap()
                .sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
}

fn assert_matches_runc(ours: &Spec, mut runc: Value) {
    // The fixture is runc 1.1.5's, which wrote "1.0.2-dev"; runc 1.2 and husk write the
    // runtime-spec version they implement (1.2.0, also `--version`'s `spec:` line).
    assert_eq!(runc["ociVersion"], "1.0.2-dev");
    runc["ociVersion"] = husk_spec::SPEC_VERSION.into();
    let mut ours_json = serde_json::to_value(ours).unwrap();
    sort_capabilities(&mut ours_json);
    sort_capabilities(&mut runc);
    let (ours_obj, runc_obj) = (ours_json.as_object().unwrap(), runc.as_object().unwrap());
    for (key, value) in runc_obj {
        assert_eq!(ours_obj.get(key), Some(value), "field {key}");
    }
    for key in ours_obj.keys() {
        assert!(runc_obj.contains_key(key), "extra field {key}");
    }
    // The typed view agrees too.
    assert_eq!(ours, &serde_json::from_value::<Spec>(runc).unwrap());
}

#[test]
fn default_matches_runc_spec() {
    assert_matches_runc(&default_spec(false), runc_config());
}

#[test]
fn rootless_default_matches_runc_spec_rootless() {
    let mut runc = runc_rootless_config();
    // runc maps container root to the caller's effective ids; the fixture was made as root.
    // SAFETY: geteuid(2)/getegid(2) take no arguments and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    runc["linux"]["uidMappings"][0]["hostID"] = uid.into();
    runc["linux"]["gidMappings"][0]["hostID"] = gid.into();
    assert_matches_runc(&default_spec(true), runc);
}

#[test]
fn serialization_has_no_nulls() {
    for rootless in [false, true] {
        let text = serde_json::to_string_pretty(&default_spec(rootless)).unwrap();
        assert!(!text.contains("null"), "{text}");
        assert!(text.contains(&format!("\"ociVersion\": \"{}\"", husk_spec::SPEC_VERSION)));
    }
}
