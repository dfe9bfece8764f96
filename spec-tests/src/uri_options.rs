//! Runner for the URI options tests (`uri-options/tests`): the connection string format,
//! with `options` compared against a JSON view of the typed `ClientOptions` keyed by the
//! lower-cased option name.

use std::time::Duration;

use mongo_client::options::{Acknowledgment, ClientOptions};
use serde_json::{Map, Value, json};

use crate::util::suite_files;
use crate::{Context, Outcome, Suite};

/// Runs the official URI options tests and the project's own.
pub(crate) fn run(ctx: &Context, out: &mut Outcome) -> bool {
    for file in suite_files(ctx, "uri-options/tests", Suite::UriOptions) {
        crate::connection_string::run_file(ctx, out, &file);
    }
    true
}

/// A document of mechanism properties as JSON: string values as strings, others shown.
pub(crate) fn doc_view(d: &bson::Document) -> Value {
    let map = d
        .iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .map_or_else(|| Value::from(v.to_string()), Value::from);
            (k.clone(), v)
        })
        .collect::<Map<String, Value>>();
    Value::Object(map)
}

fn millis(d: Duration) -> Value {
    u64::try_from(d.as_millis()).map_or(Value::Null, Value::from)
}

/// The options as URI option names (lower case) mapped to JSON values, for comparison with
/// the tests' `options`. Only options that are set appear.
pub(crate) fn options_view(o: &ClientOptions) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    put("appname", o.app_name.clone().map(Value::from));
    if let Some(c) = &o.credential {
        put(
            "authmechanism",
            c.mechanism().map(|m| Value::from(m.as_str())),
        );
        put("authsource", Some(Value::from(c.source())));
        put(
            "authmechanismproperties",
            c.mechanism_properties().map(doc_view),
        );
    }
    put(
        "compressors",
        o.compressors
            .as_ref()
            .map(|l| l.iter().map(|c| c.name()).collect::<Vec<_>>().into()),
    );
    put(
        "zlibcompressionlevel",
        o.zlib_compression_level.map(Value::from),
    );
    put("connecttimeoutms", o.connect_timeout.map(millis));
    put("sockettimeoutms", o.socket_timeout.map(millis));
    put("timeoutms", o.timeout.map(millis));
    put(
        "serverselectiontimeoutms",
        o.server_selection_timeout.map(millis),
    );
    put("localthresholdms", o.local_threshold.map(millis));
    put("heartbeatfrequencyms", o.heartbeat_frequency.map(millis));
    put("maxidletimems", o.max_idle_time.map(millis));
    put("waitqueuetimeoutms", o.wait_queue_timeout.map(millis));
    put(
        "serverselectiontryonce",
        o.server_selection_try_once.map(Value::from),
    );
    put(
        "servermonitoringmode",
        o.server_monitoring_mode.map(|s| Value::from(s.name())),
    );
    put("directconnection", o.direct_connection.map(Value::from));
    put("loadbalanced", o.load_balanced.map(Value::from));
    put("replicaset", o.replica_set.clone().map(Value::from));
    if let Some(rp) = &o.read_preference {
        put("readpreference", Some(Value::from(rp.mode.name())));
        put("readpreferencetags", Some(json!(rp.tag_sets)));
        put(
            "maxstalenessseconds",
            Some(rp.max_staleness.map_or(json!(-1), |d| json!(d.as_secs()))),
        );
    }
    put(
        "readconcernlevel",
        o.read_concern_level.clone().map(Value::from),
    );
    if let Some(wc) = &o.write_concern {
        put(
            "w",
            wc.w.as_ref().map(|w| match w {
                Acknowledgment::Nodes(n) => json!(n),
                Acknowledgment::Majority => json!("majority"),
                Acknowledgment::Custom(s) => json!(s),
            }),
        );
        put("journal", wc.journal.map(Value::from));
        put("wtimeoutms", wc.w_timeout.map(millis));
    }
    put("retryreads", o.retry_reads.map(Value::from));
    put("retrywrites", o.retry_writes.map(Value::from));
    put("maxpoolsize", o.max_pool_size.map(Value::from));
    put("minpoolsize", o.min_pool_size.map(Value::from));
    put("maxconnecting", o.max_connecting.map(Value::from));
    put(
        "maxadaptiveretries",
        o.max_adaptive_retries.map(Value::from),
    );
    put(
        "enableoverloadretargeting",
        o.enable_overload_retargeting.map(Value::from),
    );
    put(
        "srvservicename",
        o.srv_service_name.clone().map(Value::from),
    );
    put("srvmaxhosts", o.srv_max_hosts.map(Value::from));
    let t = &o.tls;
    put("tls", t.enabled.map(Value::from));
    put("ssl", t.enabled.map(Value::from));
    put("tlscafile", t.ca_file.clone().map(Value::from));
    put(
        "tlscertificatekeyfile",
        t.certificate_key_file.clone().map(Value::from),
    );
    put(
        "tlscertificatekeyfilepassword",
        t.certificate_key_file_password.clone().map(Value::from),
    );
    put(
        "tlsallowinvalidcertificates",
        t.allow_invalid_certificates.map(Value::from),
    );
    put(
        "tlsallowinvalidhostnames",
        t.allow_invalid_hostnames.map(Value::from),
    );
    put("tlsinsecure", t.insecure.map(Value::from));
    put(
        "tlsdisableocspendpointcheck",
        t.disable_ocsp_endpoint_check.map(Value::from),
    );
    put(
        "tlsdisablecertificaterevocationcheck",
        t.disable_certificate_revocation_check.map(Value::from),
    );
    let p = &o.proxy;
    put("proxyhost", p.host.clone().map(Value::from));
    put("proxyport", p.port.map(Value::from));
    put("proxyusername", p.username.clone().map(Value::from));
    put("proxypassword", p.password.clone().map(Value::from));
    m
}
