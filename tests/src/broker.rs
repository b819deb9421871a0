//! MQTT brokers for the tests, from Debian's packages (`./loa deps` installs them):
//! Mosquitto on a loopback port, stopped (or killed, and started again on the same port)
//! at will.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_for};

/// A running `mosquitto` on 127.0.0.1, killed when dropped.
pub struct Mosquitto {
    child: Option<Child>,
    pub port: u16,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Anonymous clients on a free loopback port; nothing kept on disk.
    pub async fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let text = format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n");
        std::fs::write(&conf, text).unwrap_or_else(|e| panic!("mosquitto.conf: {e}"));
        let mut m = Mosquitto {
            child: None,
            port,
            conf,
            _dir: dir,
        };
        m.run().await;
        m
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self) {
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("mosquitto (./loa deps installs it): {e}"));
        self.child = Some(child);
        let port = self.port;
        wait_for("mosquitto listening", Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(drop)
        })
        .await;
    }

    /// Kills it at once (SIGKILL: no goodbye to anyone, nothing flushed).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        self.run().await;
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}
