//! A memcached ring shared with Python: real ketama clients from PyPI
//! (pylibmc, which is libmemcached, and the pure-Python uhashring) write
//! keys that our `MemcachedBackend::ring` reads from the same servers, and
//! the other way round (`tests/interop/ring_client.py`). The sessions of
//! aiohttp-session on that ring are in `scale.rs`.

use http_session::stores::{Expect, KvBackend, Payload, Put, Write};
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
            held.map(|stored| stored.value),
            Some(Payload::from(value.as_bytes())),
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
            value: &Payload::from(value.as_bytes()),
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
