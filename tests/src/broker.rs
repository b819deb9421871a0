//! MQTT brokers for the tests, from Debian's packages (`./loa deps` installs them):
//! Mosquitto on a loopback port, stopped (or killed, and started again on the same port)
//! at will; and a cluster of NATS servers (routes between them, JetStream, an MQTT
//! listener on each), any of which can be killed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_for};

/// What a broker must queue for the controller's one client: a whole fleet's burst (every
/// node confirming an emergency at once) arrives together, and Mosquitto drops a
/// client's QoS 1 messages beyond 1,000 queued by default (docs/BROKER.md).
pub const FLEET_QUEUES: &str = "max_queued_messages 200000\nmax_inflight_messages 1000\n";

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
        Self::start_with("allow_anonymous true\n").await
    }

    /// With users ([`Mosquitto::add_user`]) and an ACL file ([`Mosquitto::set_acl`]): no
    /// one else gets in, and each user only to the topics the ACL gives it.
    pub async fn start_secured() -> Mosquitto {
        Self::start_with("allow_anonymous false\n").await
    }

    /// With a configuration of the caller's: `conf(port)` must open a listener on `port`
    /// (the one waited for).
    pub async fn start_conf(conf: impl Fn(u16) -> String) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let port = free_port();
        let path = dir.path().join("mosquitto.conf");
        std::fs::write(&path, conf(port)).unwrap_or_else(|e| panic!("mosquitto.conf: {e}"));
        let mut m = Mosquitto {
            child: None,
            port,
            conf: path,
            _dir: dir,
        };
        m.run().await;
        m
    }

    async fn start_with(auth: &str) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let (passwords, acl) = (dir.path().join("passwords"), dir.path().join("acl"));
        std::fs::write(&passwords, "").unwrap_or_else(|e| panic!("passwords: {e}"));
        std::fs::write(&acl, "").unwrap_or_else(|e| panic!("acl: {e}"));
        let files = match auth.contains("false") {
            true => format!(
                "password_file {}\nacl_file {}\n",
                passwords.display(),
                acl.display()
            ),
            false => String::new(),
        };
        let text =
            format!("listener {port} 127.0.0.1\n{auth}{files}persistence false\n{FLEET_QUEUES}");
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

    /// Adds a user (with `mosquitto_passwd`); [`Mosquitto::reload`] makes it count.
    pub fn add_user(&self, user: &str, password: &str) {
        let file = self._dir.path().join("passwords");
        let ok = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg(&file)
            .args([user, password])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mosquitto_passwd {user}");
    }

    /// Replaces the ACL file; [`Mosquitto::reload`] makes it count.
    pub fn set_acl(&self, text: &str) {
        let file = self._dir.path().join("acl");
        std::fs::write(file, text).unwrap_or_else(|e| panic!("acl: {e}"));
    }

    /// SIGHUP: Mosquitto reads its password and ACL files again.
    pub fn reload(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-s", "HUP", &c.id().to_string()])
                .status();
        }
        std::thread::sleep(Duration::from_millis(200));
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

/// A cluster of `nats-server`s on loopback: routes between all of them, JetStream (which
/// their MQTT listeners need, for sessions and retained messages, replicated across the
/// cluster), and an MQTT listener on each.
pub struct NatsCluster {
    servers: Vec<Option<Child>>,
    mqtt_ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    pub async fn start(size: usize) -> NatsCluster {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes: Vec<String> = route_ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect();
        let mut servers = Vec::new();
        let mut mqtt_ports = Vec::new();
        for (i, route_port) in route_ports.iter().enumerate() {
            let (client_port, mqtt_port) = (free_port(), free_port());
            let store = dir.path().join(format!("js{i}"));
            let conf = dir.path().join(format!("n{i}.conf"));
            let text = format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{client_port}\n\
                 jetstream {{ store_dir: {store:?} }}\n\
                 cluster {{ name: loa, listen: 127.0.0.1:{route_port}, routes: [{}] }}\n\
                 mqtt {{ listen: 127.0.0.1:{mqtt_port} }}\n",
                routes.join(", ")
            );
            std::fs::write(&conf, text).unwrap_or_else(|e| panic!("nats conf: {e}"));
            let log = std::fs::File::create(dir.path().join(format!("n{i}.log")))
                .unwrap_or_else(|e| panic!("nats log: {e}"));
            let child = Command::new("nats-server")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("nats-server (./loa deps installs it): {e}"));
            servers.push(Some(child));
            mqtt_ports.push(mqtt_port);
        }
        let cluster = NatsCluster {
            servers,
            mqtt_ports,
            _dir: dir,
        };
        // Ready once every server takes an MQTT client: JetStream has a leader then.
        for i in 0..size {
            let url = cluster.url(i);
            wait_for(&format!("{url} ready"), Duration::from_secs(60), || async {
                mqtt_accepts(cluster.mqtt_ports[i]).await.then_some(())
            })
            .await;
        }
        cluster
    }

    /// Server `i`'s MQTT listener.
    pub fn url(&self, i: usize) -> String {
        format!("mqtt://127.0.0.1:{}", self.mqtt_ports[i])
    }

    /// Kills server `i` at once (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}

/// Whether an MQTT client is accepted on `port` (a CONNACK that says so).
async fn mqtt_accepts(port: u16) -> bool {
    use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet};
    let opts = MqttOptions::new(format!("probe-{port}"), "127.0.0.1", port);
    let (_client, mut events) = AsyncClient::new(opts, 4);
    let first = tokio::time::timeout(Duration::from_secs(3), events.poll()).await;
    matches!(first, Ok(Ok(Event::Incoming(Packet::ConnAck(a)))) if a.code == ConnectReturnCode::Success)
}
