//! The real aiohttp-session and our example server on the same scaled-out
//! store share sessions both ways: a memcached ring (`app.py --memcached
//! A,B,C`: its `KetamaRing`, uhashring over one aiomcache client per
//! server), a Redis Cluster (`--redis-cluster`: redis-py's `RedisCluster`
//! under `RedisStorage`) and the master Redis Sentinel names
//! (`--redis-sentinel`: `Sentinel.master_for`).

use http_session::MemcachedBackend;

use super::*;

/// Our axum example server with `args` after the common ones.
fn rust_scaled_app(args: &[&str], label: &str) -> App {
    let mut child = Command::new(example("server_axum"))
        .args(["--port", "0", "--workers", "1", "--max-age", "3600"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example server");
    let addr = wait_for_address(&mut child).unwrap_or_else(|e| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("server_axum {args:?} did not start ({e}; its stderr is above)")
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
        label: format!("server_axum {label}"),
    }
}

/// `app.py --storage STORAGE` with `args` (shared by the tests of this
/// binary like every Python server).
fn python_scaled_app(storage: Storage, args: &[&str], label: &str) -> App {
    let mut all = vec![
        "--storage".to_owned(),
        storage.name().to_owned(),
        "--max-age".to_owned(),
        "3600".to_owned(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let (addr, log) = start_python(&all);
    App {
        server: Server {
            addr,
            stop: Box::new(|| {}),
        },
        cookie_name: "AIOHTTP_SESSION".to_owned(),
        jar: None,
        label: format!("python {label} (log: {})", log.display()),
    }
}

/// 24 sessions, started on alternating sides: set on one, read and update
/// on the other, read back, logout on the other. Returns the session ids.
async fn share_sessions(pair: &mut Pair, label: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..24 {
        let (a, b) = if i % 2 == 0 {
            (Side::Python, Side::Rust)
        } else {
            (Side::Rust, Side::Python)
        };
        pair.jar = None;
        pair.ok(a, "POST", "/set", Some(json!({"user": i}))).await;
        let id = pair.jar.clone().expect("a session cookie");
        assert_eq!(
            pair.ok(b, "GET", "/get", None).await,
            json!({"user": i}),
            "[{label}] session {i} on {b:?}"
        );
        pair.ok(b, "POST", "/set", Some(json!({"step": 2}))).await;
        assert_eq!(
            pair.ok(a, "GET", "/get", None).await,
            json!({"user": i, "step": 2}),
            "[{label}] session {i} back on {a:?}"
        );
        // Logout on one side is a logout on the other.
        pair.ok(b, "POST", "/clear", None).await;
        assert_eq!(pair.jar, None, "[{label}]");
        let app = match a {
            Side::Python => &pair.python,
            Side::Rust => &pair.rust,
        };
        let after = with_cookie(app, "GET", "/meta", Some(&id)).await.json();
        assert_eq!(
            after["session"],
            json!({}),
            "[{label}] session {i} after the logout"
        );
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn aiohttp_session_on_a_memcached_ring_shares_sessions() {
    let addrs = service_env("HTTP_SESSION_MEMCACHED_RING");
    let mut pair = Pair {
        python: python_scaled_app(
            Storage::Memcached,
            &["--memcached", &addrs],
            "memcached ring",
        ),
        rust: rust_scaled_app(
            &["--store", "memcached", "--memcached", &addrs],
            "memcached ring",
        ),
        jar: None,
        storage: Storage::Memcached,
    };
    // Each record is written on the server both rings pick: check it while
    // the session lives.
    let servers: Vec<String> = addrs.split(',').map(str::to_owned).collect();
    let placement = MemcachedBackend::ring(servers.clone()).unwrap();
    let mut per_server = vec![0; servers.len()];
    for i in 0..24 {
        pair.jar = None;
        let side = if i % 2 == 0 { Side::Python } else { Side::Rust };
        pair.ok(side, "POST", "/set", Some(json!({"placed": i})))
            .await;
        let key = format!("AIOHTTP_SESSION_{}", pair.jar.clone().expect("a cookie"));
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
    }
    share_sessions(&mut pair, "memcached ring").await;
    eprintln!(
        "aiohttp-session and server_axum on the memcached ring: sessions per server {per_server:?}"
    );
    assert!(
        per_server.iter().filter(|n| **n > 0).count() >= 2,
        "{per_server:?}"
    );
}

#[tokio::test]
async fn aiohttp_session_on_a_redis_cluster_shares_sessions() {
    let urls = service_env("HTTP_SESSION_REDIS_CLUSTER");
    let mut pair = Pair {
        python: python_scaled_app(Storage::Redis, &["--redis-cluster", &urls], "redis cluster"),
        rust: rust_scaled_app(&["--redis-cluster", &urls], "redis cluster"),
        jar: None,
        storage: Storage::Redis,
    };
    share_sessions(&mut pair, "redis cluster").await;
}

#[tokio::test]
async fn aiohttp_session_on_redis_sentinel_shares_sessions() {
    let spec = service_env("HTTP_SESSION_REDIS_SENTINEL");
    let mut pair = Pair {
        python: python_scaled_app(
            Storage::Redis,
            &["--redis-sentinel", &spec],
            "redis sentinel",
        ),
        rust: rust_scaled_app(&["--redis-sentinel", &spec], "redis sentinel"),
        jar: None,
        storage: Storage::Redis,
    };
    share_sessions(&mut pair, "redis sentinel").await;
}
