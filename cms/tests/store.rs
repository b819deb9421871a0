//! The data directory across restarts.

#![allow(clippy::unwrap_used)]

use cms::{Cms, CmsConfig};

#[test]
fn the_commune_slug_only_names_a_new_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = |slug: &str| CmsConfig {
        data_dir: dir.path().to_owned(),
        commune_slug: slug.into(),
        commune_name: "Xã Hạ Long".into(),
        ..CmsConfig::default()
    };
    let first = Cms::open(config("ha-long")).unwrap();
    let id = first.default_commune();
    drop(first);
    // `controller user add` and `serve` without --commune on the same directory.
    let again = Cms::open(config("default")).unwrap();
    assert_eq!(again.default_commune(), id);
    let communes = again
        .store()
        .call_sync(|c| cms::store::users::communes(c))
        .unwrap();
    assert_eq!(communes.len(), 1);
    assert_eq!(communes[0].slug, "ha-long");
}
