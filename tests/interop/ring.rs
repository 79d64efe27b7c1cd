//! A memcached ring shared with Python: real ketama clients from PyPI
//! (pylibmc, which is libmemcached, and the pure-Python uhashring) write
//! keys that our `MemcachedBackend::ring` reads from the same servers, and
//! the other way round (`tests/interop/ring_client.py`); and the real
//! aiohttp-session on that ring (`app.py --memcached A,B,C`, its
//! `KetamaRing` over aiomcache) shares sessions with our example server.

use http_session::stores::{Expect, KvBackend, Put, Write};
use http_session::{KetamaFlavor, MemcachedBackend};

use super::*;

fn ring_addrs() -> Vec<String> {
    service_env("HTTP_SESSION_MEMCACHED_RING")
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// Runs `ring_client.py` with `request` on stdin; its `found` map.
fn ring_client(request: &Value) -> serde_json::Map<String, Value> {
    use std::io::Write as _;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/ring_client.py");
    let python = python();
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} (HTTP_SESSION_PYTHON): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    // Bounded: the script's sockets time out after 5 s, the whole run
    // after 60 s.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(output) => output.expect("ring_client.py output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("ring_client.py took over 60 s");
        }
    };
    assert!(
        output.status.success(),
        "ring_client.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reply: Value = serde_json::from_slice(&output.stdout).expect("JSON from ring_client.py");
    reply["found"].as_object().expect("a found map").clone()
}

/// `n` session keys and records, unique to this test run.
fn items(n: usize) -> Vec<(String, String)> {
    let run = harness::StoreKind::unique_id();
    (0..n)
        .map(|i| {
            // 32 hex digits: the run's id with the item number mixed in.
            let id = format!("{}{i:06x}", &run[6..]);
            let key = format!("AIOHTTP_SESSION_{id}");
            let value = format!(r#"{{"created": {}, "session": {{"i": {i}}}}}"#, now());
            (key, value)
        })
        .collect()
}

/// Python writes through `client`, we read through a ring of `flavor`;
/// we write, Python reads. Every key is found on both sides; a ring of
/// another flavor misses many (the check can tell placements apart).
async fn shared_placement(
    client: &str,
    behaviors: Value,
    flavor: KetamaFlavor,
    other: KetamaFlavor,
) {
    let servers = ring_addrs();
    let ours = MemcachedBackend::ring_with(flavor, servers.clone()).unwrap();
    let wrong = MemcachedBackend::ring_with(other, servers.clone()).unwrap();
    let label = format!("{client} {behaviors}");

    // Python writes, we read.
    let written = items(300);
    let request = json!({
        "op": "write", "client": client, "behaviors": behaviors, "servers": servers,
        "items": written.iter().map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>(),
    });
    assert_eq!(ring_client(&request).len(), written.len());
    let mut misplaced = 0;
    for (key, value) in &written {
        let held = ours.get(key).await.unwrap();
        assert_eq!(
            held.map(|stored| stored.value).as_deref(),
            Some(value.as_bytes()),
            "[{label}] {key}: written by Python, not where our ring looks"
        );
        if wrong.get(key).await.unwrap().is_none() {
            misplaced += 1;
        }
    }

    // We write, Python reads.
    let ours_written = items(300);
    for (key, value) in &ours_written {
        let write = Write::Value {
            value: value.as_bytes(),
            ttl: Some(600),
        };
        assert!(matches!(
            ours.put(key, write, Expect::Absent).await.unwrap(),
            Put::Done
        ));
    }
    let request = json!({
        "op": "read", "client": client, "behaviors": behaviors, "servers": servers,
        "items": ours_written.iter().map(|(k, _)| (k.clone(), Value::Null)).collect::<serde_json::Map<_, _>>(),
    });
    let found = ring_client(&request);
    for (key, value) in &ours_written {
        assert_eq!(
            found[key].as_str(),
            Some(value.as_str()),
            "[{label}] {key}: written by us, not where Python looks"
        );
    }
    for (key, _) in written.iter().chain(&ours_written) {
        ours.delete(key).await.unwrap();
    }
    eprintln!(
        "memcached ring, {label}: {} keys written by Python read by us ({flavor:?}), {} written \
         by us read by Python; a {other:?} ring misses {misplaced} of {}",
        written.len(),
        ours_written.len(),
        written.len()
    );
    assert!(
        misplaced > 100,
        "[{label}] a {other:?} ring found almost everything"
    );
}

#[tokio::test]
async fn pylibmc_ketama_weighted_places_keys_as_we_do() {
    shared_placement(
        "pylibmc",
        json!({"ketama_weighted": true}),
        KetamaFlavor::KetamaWeighted,
        KetamaFlavor::Ketama,
    )
    .await;
}

#[tokio::test]
async fn pylibmc_ketama_places_keys_as_we_do() {
    shared_placement(
        "pylibmc",
        json!({"ketama": true}),
        KetamaFlavor::Ketama,
        KetamaFlavor::KetamaWeighted,
    )
    .await;
}

#[tokio::test]
async fn pylibmc_ketama_md5_places_keys_as_we_do() {
    shared_placement(
        "pylibmc",
        json!({"ketama": true, "hash": "md5"}),
        KetamaFlavor::KetamaMd5,
        KetamaFlavor::KetamaWeighted,
    )
    .await;
}

#[tokio::test]
async fn uhashring_ketama_places_keys_as_we_do() {
    shared_placement(
        "uhashring",
        json!({}),
        KetamaFlavor::KetamaWeighted,
        KetamaFlavor::Ketama,
    )
    .await;
}

/// Our axum example server on the ring (`--memcached A,B,C`).
fn rust_ring_app(addrs: &str) -> App {
    let mut child = Command::new(example("server_axum"))
        .args(["--port", "0", "--workers", "1", "--store", "memcached"])
        .args(["--memcached", addrs, "--max-age", "3600"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example server");
    let addr = wait_for_address(&mut child).unwrap_or_else(|e| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("server_axum did not start ({e}; its stderr is above)")
    });
    App {
        server: Server {
            addr,
            stop: Box::new(move || {
                let _ = child.kill();
                let _ = child.wait();
            }),
        },
        cookie_name: "AIOHTTP_SESSION".to_owned(),
        jar: None,
        label: "server_axum memcached ring".to_owned(),
    }
}

/// aiohttp-session on the ring (its `MemcachedStorage` over `KetamaRing`)
/// and our server on the same ring share sessions both ways; every record
/// is on the server both rings pick.
#[tokio::test]
async fn aiohttp_session_on_the_ring_shares_sessions() {
    let addrs = service_env("HTTP_SESSION_MEMCACHED_RING");
    let args: Vec<String> = [
        "--storage",
        "memcached",
        "--memcached",
        &addrs,
        "--max-age",
        "3600",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let (py_addr, log) = start_python(&args);
    let python = App {
        server: Server {
            addr: py_addr,
            stop: Box::new(|| {}),
        },
        cookie_name: "AIOHTTP_SESSION".to_owned(),
        jar: None,
        label: format!("python memcached ring (log: {})", log.display()),
    };
    let mut pair = Pair {
        python,
        rust: rust_ring_app(&addrs),
        jar: None,
        storage: Storage::Memcached,
    };
    let servers = ring_addrs();
    let placement = MemcachedBackend::ring(servers.clone()).unwrap();
    let mut per_server = vec![0; servers.len()];
    for i in 0..24 {
        let (a, b) = if i % 2 == 0 {
            (Side::Python, Side::Rust)
        } else {
            (Side::Rust, Side::Python)
        };
        pair.jar = None;
        pair.ok(a, "POST", "/set", Some(json!({"user": i}))).await;
        let id = pair.jar.clone().expect("a session cookie");
        assert_eq!(pair.ok(b, "GET", "/get", None).await, json!({"user": i}));
        pair.ok(b, "POST", "/set", Some(json!({"step": 2}))).await;
        assert_eq!(
            pair.ok(a, "GET", "/get", None).await,
            json!({"user": i, "step": 2})
        );
        // The record is on the server our ring and Python's pick.
        let key = format!("AIOHTTP_SESSION_{id}");
        let index = placement.server_for(&key);
        let stream = tokio::net::TcpStream::connect(&servers[index])
            .await
            .unwrap();
        let mut raw = Kv::Memcached(tokio::io::BufReader::new(stream));
        assert!(
            raw.get(&key).await.is_some(),
            "{key} not on {}",
            servers[index]
        );
        per_server[index] += 1;
        // Logout on one side is a logout on the other.
        pair.ok(b, "POST", "/clear", None).await;
        assert_eq!(pair.jar, None);
        let after = with_cookie(&pair.python, "GET", "/meta", Some(&id))
            .await
            .json();
        assert_eq!(after["session"], json!({}), "session {i} after the logout");
    }
    eprintln!("aiohttp-session and server_axum on the ring: 24 sessions per server {per_server:?}");
    assert!(
        per_server.iter().filter(|n| **n > 0).count() >= 2,
        "{per_server:?}"
    );
}
