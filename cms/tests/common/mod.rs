//! A real CMS server on 127.0.0.1:0 with a fresh data directory, driven over HTTP.

#![allow(dead_code)]
// Test helpers: a failed set-up step should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use cms::model::User;
use cms::{Cms, CmsConfig, NewUserRequest};
use reqwest::{Client, Response, multipart};
use serde_json::{Value, json};

pub const PASSWORD: &str = "mật-khẩu-thử";

pub struct Server {
    pub url: String,
    pub cms: Cms,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../audio-samples")
        .join(name)
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut CmsConfig)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = CmsConfig {
            data_dir: dir.path().to_owned(),
            ..CmsConfig::default()
        };
        tweak(&mut config);
        let cms = Cms::open(config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(cms::http::serve(cms.clone(), listener, async move {
            let _ = stopped.await;
        }));
        Server {
            url,
            cms,
            dir,
            stop: Some(stop),
        }
    }

    pub async fn user(&self, username: &str, role: &str) -> User {
        let req = NewUserRequest {
            username: username.into(),
            password: PASSWORD.into(),
            role: role.into(),
            display_name: None,
            commune_id: None,
            province_wide: false,
        };
        self.cms.create_user(None, req).await.unwrap()
    }

    /// A user with this role, logged in over the API.
    pub async fn client(&self, username: &str, role: &str) -> Api {
        self.user(username, role).await;
        self.login(username).await
    }

    pub async fn login(&self, username: &str) -> Api {
        let res = Client::new()
            .post(format!("{}/api/v1/auth/login", self.url))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "login {username}");
        let body: Value = res.json().await.unwrap();
        Api {
            url: self.url.clone(),
            token: body["token"].as_str().unwrap().to_owned(),
            http: Client::new(),
        }
    }

    pub fn anonymous(&self) -> Api {
        Api {
            url: self.url.clone(),
            token: String::new(),
            http: Client::new(),
        }
    }

    /// Files under blobs/ (excluding the tmp dir) and in blobs/tmp.
    pub fn blob_files(&self) -> (usize, usize) {
        let root = self.dir.path().join("blobs");
        let mut stored = 0;
        for entry in std::fs::read_dir(&root).unwrap().flatten() {
            if entry.file_name() != "tmp" {
                stored += std::fs::read_dir(entry.path()).unwrap().count();
            }
        }
        (stored, std::fs::read_dir(root.join("tmp")).unwrap().count())
    }
}

/// A bearer-token client.
pub struct Api {
    pub url: String,
    pub token: String,
    pub http: Client,
}

impl Api {
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let b = self.http.request(method, format!("{}{path}", self.url));
        if self.token.is_empty() {
            b
        } else {
            b.bearer_auth(&self.token)
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(reqwest::Method::GET, path).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.req(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap()
    }

    /// A new village of this (admin) user's commune; its id.
    pub async fn village(&self, name: &str) -> i64 {
        let (code, v) = json_of(self.post("/api/v1/villages", json!({ "name": name })).await).await;
        assert_eq!(code, 201, "{v}");
        v["id"].as_i64().unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.req(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn upload(&self, title: &str, file_name: &str, data: Vec<u8>) -> Response {
        let form = multipart::Form::new()
            .text("title", title.to_owned())
            .text("category", "thông báo")
            .part(
                "file",
                multipart::Part::bytes(data).file_name(file_name.to_owned()),
            );
        self.req(reqwest::Method::POST, "/api/v1/content")
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Uploads a sample and returns the item.
    pub async fn upload_sample(&self, title: &str, name: &str) -> Value {
        let res = self
            .upload(title, name, std::fs::read(sample(name)).unwrap())
            .await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }
}

pub async fn json_of(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// An editor's item ("Bản tin", news.mp3) submitted and approved: (editor, approver, id).
pub async fn approved_item(s: &Server) -> (Api, Api, i64) {
    let editor = s.client("bientap", "editor").await;
    let approver = s.client("pheduyet", "approver").await;
    let id = editor.upload_sample("Bản tin", "news.mp3").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        editor
            .post(&format!("/api/v1/content/{id}/submit"), json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        approver
            .post(&format!("/api/v1/content/{id}/approve"), json!({}))
            .await
            .status(),
        200
    );
    (editor, approver, id)
}
