use super::*;

#[test]
fn reserves_parse_as_sizes_or_shares() {
    assert_eq!(Reserve::parse("5%").unwrap(), Reserve::Percent(5.0));
    assert_eq!(Reserve::parse("0").unwrap(), Reserve::Bytes(0));
    assert_eq!(Reserve::parse("64MiB").unwrap(), Reserve::Bytes(64 << 20));
    assert_eq!(Reserve::parse("default").unwrap(), Reserve::Default);
    for bad in ["", "x%", "-1%", "80%", "lots"] {
        assert!(Reserve::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(Reserve::Default.bytes(100 << 20), 5 << 20);
    assert_eq!(Reserve::Default.bytes(1 << 40), 1 << 30);
    assert_eq!(Reserve::Percent(10.0).bytes(1000), 100);
}

#[test]
fn levels_follow_the_reserve() {
    let r = |free| Reading {
        role: Role::Uploads,
        path: Arc::from(Path::new("/")),
        free,
        total: 1000,
        reserve: 100,
    };
    assert_eq!(r(99).level(), Level::Full);
    assert_eq!(r(150).level(), Level::Low);
    assert_eq!(r(200).level(), Level::Ok);
    assert_eq!(r(150).room(), 50);
    assert_eq!(r(150).media_room(), 0);
}

#[test]
fn records_bound_upload_data_only_when_their_disk_is_below_the_reserve() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let metadata_only = |reserve| {
        Space::new(
            Reserve::Bytes(reserve),
            vec![(Role::Metadata, dir.path().to_owned())],
            metrics.clone(),
        )
    };
    // An object store's bytes take no room here: only a full metadata disk stops them.
    let (room, _) = metadata_only(0).data_room(true).unwrap();
    assert_eq!(room, u64::MAX);
    assert_eq!(metadata_only(0).allowance().take(1 << 40), 1 << 40);
    let full = metadata_only(u64::MAX / 2);
    let (room, r) = full.data_room(false).unwrap();
    assert_eq!((room, r.level()), (0, Level::Full));
    assert!(
        full.0.last.lock().unwrap().is_some(),
        "the reading is kept for reuse"
    );
    assert_eq!(full.allowance().take(1), 0);
    // A stream that ran out of room leaves nothing stale for the next check.
    assert!(full.0.last.lock().unwrap().is_none());
    // Local storage's bytes count against the uploads' filesystem.
    let both = Space::new(
        Reserve::Bytes(0),
        vec![
            (Role::Uploads, dir.path().join("uploads")),
            (Role::Metadata, dir.path().to_owned()),
        ],
        metrics.clone(),
    );
    let (room, r) = both.data_room(true).unwrap();
    assert_eq!(r.role, Role::Uploads);
    assert!(room < u64::MAX);
}
