//! `mongo-testkit-server`: runs the testkit server (or a replica set) until killed.
//!
//! ```text
//! mongo-testkit-server [--host H] [--port P] [--auth USER:PASS]... [--tls-cert C --tls-key K [--tls-ca CA]]
//!                      [--replset NAME --members N [--replication-lag-ms MS]]
//!                      [--compressors zlib,snappy,zstd]
//! ```
//!
//! `--gen-certs DIR` writes a test CA, server and client certificate into DIR (ca.pem,
//! server.pem, server.key, client.pem, ...) and listens with TLS using them.
//!
//! Prints `listening on HOST:PORT` once per member (members use ports P, P+1, ...).

use std::process::ExitCode;

use mongo_testkit::{ReplicaSet, ServerOptions, TestServer, TlsFiles};

struct Args {
    opts: ServerOptions,
    replset: Option<String>,
    members: usize,
}

fn usage() -> String {
    "usage: mongo-testkit-server [--host H] [--port P] [--auth USER:PASS]... \
     [--tls-cert C --tls-key K [--tls-ca CA]] [--gen-certs DIR] [--replset NAME --members N \
     [--replication-lag-ms MS]] \
     [--compressors LIST]"
        .to_string()
}

fn parse() -> Result<Args, String> {
    let mut opts = ServerOptions::default();
    let mut replset = None;
    let mut members = 3usize;
    let (mut cert, mut key, mut ca) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
        };
        match flag.as_str() {
            "--host" => opts = opts.with_host(value()?),
            "--port" => {
                let v = value()?;
                opts = opts.with_port(v.parse().map_err(|_| format!("bad port {v:?}"))?);
            }
            "--auth" => {
                let v = value()?;
                let (u, p) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--auth wants USER:PASS, got {v:?}"))?;
                opts = opts.with_user(u, p);
            }
            "--tls-cert" => cert = Some(value()?),
            "--tls-key" => key = Some(value()?),
            "--tls-ca" => ca = Some(value()?),
            "--gen-certs" => {
                let dir = std::path::PathBuf::from(value()?);
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let certs = mongo_testkit::generate_test_certs_in(&dir)
                    .map_err(|e| format!("certificate generation failed: {e}"))?;
                cert = Some(certs.server_cert.display().to_string());
                key = Some(certs.server_key.display().to_string());
                ca = Some(certs.ca_cert.display().to_string());
            }
            "--replset" => replset = Some(value()?),
            "--members" => {
                let v = value()?;
                members = v.parse().map_err(|_| format!("bad member count {v:?}"))?;
            }
            "--replication-lag-ms" => {
                let v = value()?;
                let ms: u64 = v.parse().map_err(|_| format!("bad lag {v:?}"))?;
                opts = opts.with_replication_lag(std::time::Duration::from_millis(ms));
            }
            "--compressors" => {
                let v = value()?;
                opts = opts.with_compressors(v.split(',').filter(|s| !s.is_empty()));
            }
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => {
            let mut files = TlsFiles::new(c, k);
            if let Some(ca) = ca {
                files = files.with_client_ca(ca);
            }
            opts = opts.with_tls(files);
        }
        (None, None) => {}
        _ => return Err("--tls-cert and --tls-key go together".into()),
    }
    Ok(Args {
        opts,
        replset,
        members,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    // The handles must stay alive: dropping the last one stops a server.
    let mut keep_rs = None;
    let mut keep_server = None;
    let hosts = match &args.replset {
        Some(name) => match ReplicaSet::start_with(name, args.members, args.opts).await {
            Ok(rs) => keep_rs.insert(rs).hosts(),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => match TestServer::start(args.opts).await {
            Ok(s) => vec![keep_server.insert(s).host_port()],
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    for h in hosts {
        println!("listening on {h}");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    std::future::pending::<()>().await;
    drop((keep_rs, keep_server));
    ExitCode::SUCCESS
}
