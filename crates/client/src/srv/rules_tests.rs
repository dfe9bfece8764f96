//! Unit tests of the sans-I/O seedlist rules: domain checks (the spec's prose tests 1 to 4 at
//! the level of the rule), answer bounds, TXT rules and the merge of TXT options.

use std::time::Duration;

use super::SrvError;
use super::rules::*;
use crate::options::ClientOptions;
use crate::uri::UriError;

fn rec(target: &str, port: u16, ttl: u32) -> SrvRecord {
    SrvRecord {
        target: target.to_owned(),
        port,
        ttl,
    }
}

fn name(host: &str) -> SrvName {
    SrvName::new(host).unwrap_or_else(|e| panic!("{host}: {e}"))
}

#[test]
fn hosts_with_fewer_than_three_parts_are_valid_srv_names() {
    for host in ["localhost", "mongo.local", "blogs.mongodb.com"] {
        let n = name(host);
        assert_eq!(n.query_name("mongodb"), format!("_mongodb._tcp.{host}."));
    }
    assert!(matches!(
        SrvName::new("a..b"),
        Err(SrvError::InvalidName { .. })
    ));
}

#[test]
fn targets_outside_the_domain_are_rejected() {
    let cases = [
        ("localhost", "localhost.mongodb"),
        ("mongo.local", "test_1.evil.local"),
        ("blogs.mongodb.com", "blogs.evil.com"),
        // Identical to a short SRV host.
        ("localhost", "localhost"),
        ("mongo.local", "mongo.local"),
        // The shared part without its separating dot.
        ("localhost", "test_1.cluster_1localhost"),
        ("mongo.local", "test_1.my_hostmongo.local"),
        ("blogs.mongodb.com", "cluster.testmongodb.com"),
        // The root, and empty labels.
        ("blogs.mongodb.com", "."),
        ("blogs.mongodb.com", "a..mongodb.com"),
    ];
    for (host, target) in cases {
        assert!(
            matches!(
                name(host).check_target(target),
                Err(SrvError::DomainMismatch { .. })
            ),
            "{host} -> {target}"
        );
    }
}

#[test]
fn targets_inside_the_domain_are_accepted_case_insensitively() {
    assert_eq!(
        name("localhost")
            .check_target("Test.LOCALHOST.")
            .ok()
            .as_deref(),
        Some("test.localhost")
    );
    assert!(name("mongo.local").check_target("a.b.mongo.local").is_ok());
    assert!(
        name("test1.test.build.10gen.cc")
            .check_target("localhost.sub.test.build.10gen.cc.")
            .is_ok()
    );
    assert!(
        name("test1.test.build.10gen.cc")
            .check_target("test.build.10gen.cc.")
            .is_err()
    );
}

#[test]
fn initial_answers_need_records_and_at_most_the_limit() {
    let n = name("cluster.example.com");
    assert!(matches!(n.seeds(&[]), Err(SrvError::NoRecords { .. })));
    let many: Vec<SrvRecord> = (0..=MAX_SRV_RECORDS)
        .map(|i| rec(&format!("h{i}.example.com."), 27017, 60))
        .collect();
    assert!(matches!(
        n.seeds(&many),
        Err(SrvError::TooManyRecords { count, .. }) if count == MAX_SRV_RECORDS + 1
    ));
    let seeds = n
        .seeds(&[rec("a.example.com.", 1, 60), rec("a.example.com.", 1, 60)])
        .unwrap();
    assert_eq!(seeds.len(), 1, "duplicates collapse");
}

#[test]
fn rescans_drop_foreign_targets_instead_of_failing() {
    let n = name("cluster.example.com");
    let hosts = n
        .rescan_hosts(&[rec("a.example.com.", 1, 60), rec("evil.com.", 2, 60)])
        .unwrap();
    assert_eq!(hosts.len(), 1);
    let hb = Duration::from_secs(10);
    assert_eq!(plan_rescan(&n, None, hb), (None, hb));
    assert_eq!(plan_rescan(&n, Some(&[]), hb), (None, hb));
    assert_eq!(
        plan_rescan(&n, Some(&[rec("evil.com.", 2, 60)]), hb),
        (None, hb)
    );
}

#[test]
fn the_rescan_interval_is_the_lowest_ttl_but_at_least_a_minute() {
    assert_eq!(rescan_interval(&[]), MIN_RESCAN_INTERVAL);
    assert_eq!(
        rescan_interval(&[rec("a", 1, 300), rec("b", 1, 120)]),
        Duration::from_secs(120)
    );
    assert_eq!(rescan_interval(&[rec("a", 1, 5)]), MIN_RESCAN_INTERVAL);
    // A TTL with the high bit set counts as zero (RFC 2181): no rescan pushed to 2106.
    assert_eq!(
        rescan_interval(&[rec("a", 1, u32::MAX)]),
        MIN_RESCAN_INTERVAL
    );
    assert_eq!(
        rescan_interval(&[rec("a", 1, i32::MAX as u32)]),
        Duration::from_secs(i32::MAX as u64)
    );
}

#[test]
fn txt_records_one_at_most_strings_joined_text_bounded() {
    assert_eq!(txt_options("h", &[]).unwrap(), None);
    let one = vec![vec![
        b"replicaS".to_vec(),
        b"et=rep".to_vec(),
        b"l0".to_vec(),
    ]];
    assert_eq!(
        txt_options("h", &one).unwrap().as_deref(),
        Some("replicaSet=repl0")
    );
    let two = vec![vec![b"a=1".to_vec()], vec![b"b=2".to_vec()]];
    assert!(matches!(
        txt_options("h", &two),
        Err(SrvError::MultipleTxtRecords { count: 2, .. })
    ));
    let huge = vec![vec![vec![b'a'; 255]; 20]];
    assert!(matches!(
        txt_options("h", &huge),
        Err(SrvError::InvalidTxt { .. })
    ));
    let binary = vec![vec![vec![0xff, 0xfe]]];
    assert!(matches!(
        txt_options("h", &binary),
        Err(SrvError::InvalidTxt { .. })
    ));
}

fn srv_options(uri: &str) -> ClientOptions {
    ClientOptions::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"))
}

#[test]
fn txt_options_apply_under_the_connection_string() {
    let o = srv_options("mongodb+srv://u:p@c.example.com/");
    let m = merge_txt(&o, Some("replicaSet=repl0&authSource=thisDB"), 3).unwrap();
    assert_eq!(m.replica_set.as_deref(), Some("repl0"));
    assert_eq!(m.credential.as_ref().map(|c| c.source()), Some("thisDB"));
    assert_eq!(m.auth_source.as_deref(), Some("thisDB"));

    let o = srv_options("mongodb+srv://u:p@c.example.com/?authSource=otherDB&replicaSet=mine");
    let m = merge_txt(&o, Some("replicaSet=repl0&authSource=thisDB"), 3).unwrap();
    assert_eq!(m.replica_set.as_deref(), Some("mine"));
    assert_eq!(m.credential.as_ref().map(|c| c.source()), Some("otherDB"));

    let o = srv_options("mongodb+srv://c.example.com/?loadBalanced=false");
    let m = merge_txt(&o, Some("loadBalanced=true"), 3).unwrap();
    assert_eq!(m.load_balanced, Some(false));
}

#[test]
fn txt_records_set_only_three_options_and_must_be_well_formed() {
    let o = srv_options("mongodb+srv://c.example.com/");
    for txt in ["ssl=false", "socketTimeoutMS=500", "tls=true"] {
        assert!(
            matches!(
                merge_txt(&o, Some(txt), 1),
                Err(MergeError::Txt(UriError::Unsupported { .. }))
            ),
            "{txt}"
        );
    }
    assert!(matches!(
        merge_txt(&o, Some("authSource"), 1),
        Err(MergeError::Txt(UriError::MalformedOption(_)))
    ));
}

#[test]
fn merged_options_are_validated_again() {
    // srvMaxHosts with a replicaSet from the TXT record.
    let o = srv_options("mongodb+srv://c.example.com/?srvMaxHosts=1");
    assert!(matches!(
        merge_txt(&o, Some("replicaSet=repl0"), 2),
        Err(MergeError::Options(UriError::Conflict(_)))
    ));
    // loadBalanced from the TXT record with several SRV hosts, or with replicaSet.
    let o = srv_options("mongodb+srv://c.example.com/");
    assert!(matches!(
        merge_txt(&o, Some("loadBalanced=true"), 2),
        Err(MergeError::Options(UriError::Conflict(_)))
    ));
    assert!(merge_txt(&o, Some("loadBalanced=true"), 1).is_ok());
    let o = srv_options("mongodb+srv://c.example.com/?replicaSet=x");
    assert!(merge_txt(&o, Some("loadBalanced=true"), 1).is_err());
}

#[test]
fn srv_max_hosts_takes_a_random_subset() {
    let seeds: Vec<_> = (1..=5)
        .map(|p| mongo_events::ServerAddress::tcp_with("h.example.com", Some(p)))
        .collect();
    assert_eq!(choose_seeds(seeds.clone(), 0, &mut |_| 0).len(), 5);
    assert_eq!(choose_seeds(seeds.clone(), 9, &mut |_| 0).len(), 5);
    let two = choose_seeds(seeds.clone(), 2, &mut |_| 0);
    assert_eq!(two.len(), 2);
    assert!(two.iter().all(|s| seeds.contains(s)));
}
