//! Starts `moto_server` (PyPI `moto[server]`, installed by scripts/setup.sh) on 127.0.0.1 for
//! the S3 tests and stops it when dropped. A missing server is a test failure, never a skip.
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[..9] == b"HTTP/1.1 " || n >= 12 && &buf[..9] == b"HTTP/1.0 ")
}

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("FDNIX_MOTO_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .expect("moto_server not found: run scripts/setup.sh test-tools");
        let m = Moto { child, port };
        let t = Instant::now();
        while !ready(port) {
            assert!(t.elapsed() < Duration::from_secs(30), "moto_server did not become ready on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
