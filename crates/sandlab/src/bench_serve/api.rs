//! The bench server's HTTP API and terminal WebSocket, as the bench uses them.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::server::Server;
use super::terminal::Socket;
use super::{POOL, POOL_SIZE};

impl Server {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<reqwest::Response> {
        Ok(self.raw(method, path, body).await?)
    }

    /// `GET /api/v1{path}` with the bench token; a transport error is an `Err`.
    pub(super) async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.raw(reqwest::Method::GET, path, None).await
    }

    /// `POST /api/v1{path}` with `body`.
    pub(super) async fn post(
        &self,
        path: &str,
        body: &Value,
    ) -> reqwest::Result<reqwest::Response> {
        self.raw(reqwest::Method::POST, path, Some(body)).await
    }

    /// `DELETE /api/v1{path}`.
    pub(super) async fn delete_path(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.raw(reqwest::Method::DELETE, path, None).await
    }

    async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await
    }

    /// `PUT /sandboxes/{id}/files?path=`: writes a file into the sandbox.
    pub(super) async fn put_file(&self, id: &str, path: &str, data: &[u8]) -> anyhow::Result<()> {
        let resp = self
            .http
            .put(format!("{}/api/v1/sandboxes/{id}/files", self.base))
            .query(&[("path", path)])
            .bearer_auth(&self.token)
            .body(data.to_vec())
            .send()
            .await?;
        if resp.status() != 204 {
            bail!(
                "writing {path} answered {}: {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The proxy's URL of `port` of sandbox `id`, once the port listens (within 30 s).
    pub(super) async fn port_url(&self, id: &str, port: u16) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let list = json_of(self.get(&format!("/sandboxes/{id}/ports")).await?, 200).await?;
            let found = list["items"]
                .as_array()
                .and_then(|items| items.iter().find(|p| p["port"] == port))
                .and_then(|p| p["url"].as_str().map(str::to_owned));
            if let Some(url) = found {
                return Ok(url);
            }
            if Instant::now() > deadline {
                bail!("port {port} did not listen in {id} within 30 s (or the proxy is off)");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `POST /sandboxes`: the new id and the time from request to the 201's body.
    pub(super) async fn create(&self, body: &Value) -> anyhow::Result<(String, Duration)> {
        let start = Instant::now();
        let resp = self
            .call(reqwest::Method::POST, "/sandboxes", Some(body))
            .await?;
        let v = json_of(resp, 201)
            .await
            .context("cannot create a sandbox")?;
        let took = start.elapsed();
        let id = v["id"].as_str().context("no id in the answer")?.to_owned();
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
        Ok((id, took))
    }

    pub(super) async fn delete(&self, id: &str) -> anyhow::Result<()> {
        let resp = self
            .call(reqwest::Method::DELETE, &format!("/sandboxes/{id}"), None)
            .await?;
        if !matches!(resp.status().as_u16(), 204 | 404) {
            bail!("cannot delete {id}: {}", resp.status());
        }
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(())
    }

    pub(super) async fn is_running(&self, id: &str) -> anyhow::Result<bool> {
        let resp = self
            .call(reqwest::Method::GET, &format!("/sandboxes/{id}"), None)
            .await?;
        Ok(json_of(resp, 200).await?["state"] == "running")
    }

    pub(super) async fn exec(&self, id: &str, cmd: &[&str]) -> anyhow::Result<()> {
        let body = json!({ "cmd": cmd, "timeout": "10m" });
        let resp = self
            .call(
                reqwest::Method::POST,
                &format!("/sandboxes/{id}/exec"),
                Some(&body),
            )
            .await?;
        let v = json_of(resp, 200).await?;
        if v["exit_code"] != 0 {
            bail!("`{}` failed in the sandbox: {}", cmd.join(" "), v["stderr"]);
        }
        Ok(())
    }

    pub(super) async fn terminal(&self, id: &str, name: &str) -> anyhow::Result<Socket> {
        let url = format!(
            "ws{}/api/v1/sandboxes/{id}/terminal?name={name}&cols=200&rows=50",
            &self.base[4..]
        );
        let mut req = url.into_client_request()?;
        req.headers_mut()
            .insert("Authorization", format!("Bearer {}", self.token).parse()?);
        req.headers_mut().insert("Origin", self.base.parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .context("cannot open the terminal WebSocket")?;
        Ok(ws)
    }

    pub(super) async fn metrics(&self) -> anyhow::Result<String> {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(resp.error_for_status()?.text().await?)
    }

    pub(super) async fn wait_pool_full(&self) -> anyhow::Result<()> {
        let label = format!("profile=\"{POOL}\"");
        let start = Instant::now();
        while metric(&self.metrics().await?, "sandlab_pool_ready", &label) != Some(POOL_SIZE as f64)
        {
            if start.elapsed() > Duration::from_secs(120) {
                bail!("the warm pool did not refill within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// The warm lab sessions (`[[lab_pool]]`) the server runs now, as the admin lists them.
    pub(super) async fn warm_sessions(&self) -> anyhow::Result<Vec<Value>> {
        let resp = self
            .call(reqwest::Method::GET, "/sessions?active=true", None)
            .await?;
        let page = json_of(resp, 200).await?;
        Ok(page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| {
                s["owner"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("pool:lab:"))
            })
            .cloned()
            .collect())
    }

    /// Waits (up to 10 minutes) until no warm lab session is being set up.
    pub(super) async fn wait_warm_settled(&self) -> anyhow::Result<()> {
        let start = Instant::now();
        while self
            .warm_sessions()
            .await?
            .iter()
            .any(|s| s["state"] == "starting")
        {
            if start.elapsed() > Duration::from_secs(600) {
                bail!("a warm lab session was still being set up after 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }

    /// Waits (up to 10 minutes) until a warm session of `lab` is parked.
    pub(super) async fn wait_parked(&self, lab: &str) -> anyhow::Result<()> {
        let label = format!("lab=\"{lab}\"");
        let start = Instant::now();
        while metric(&self.metrics().await?, "sandlab_lab_pool_ready", &label).unwrap_or(0.0) < 1.0
        {
            if start.elapsed() > Duration::from_secs(600) {
                bail!("no warm session of {lab} was ready within 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }

    /// The node sandboxes of the warm lab sessions.
    pub(super) async fn warm_node_ids(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .warm_sessions()
            .await?
            .iter()
            .flat_map(|s| s["nodes"].as_array().cloned().unwrap_or_default())
            .filter_map(|n| n["sandbox"].as_str().map(str::to_owned))
            .collect())
    }

    /// Ids of the bench pool's own sandboxes.
    pub(super) async fn pool_ids(&self) -> anyhow::Result<Vec<String>> {
        let (mut ids, mut path) = (Vec::new(), "/sandboxes?limit=500".to_owned());
        loop {
            let resp = self.call(reqwest::Method::GET, &path, None).await?;
            let page = json_of(resp, 200).await?;
            for s in page["items"].as_array().into_iter().flatten() {
                if s["owner"] == format!("pool:{POOL}") {
                    ids.extend(s["id"].as_str().map(str::to_owned));
                }
            }
            match page["next"].as_str() {
                Some(next) => path = format!("/sandboxes?limit=500&cursor={next}"),
                None => return Ok(ids),
            }
        }
    }
}

/// The body of a response with the `expected` status, or an error with its message.
pub(super) async fn json_of(resp: reqwest::Response, expected: u16) -> anyhow::Result<Value> {
    let status = resp.status();
    let text = resp.text().await?;
    if status.as_u16() != expected {
        bail!("the server answered {status}: {}", text.trim());
    }
    serde_json::from_str(&text).context("the server's answer is not JSON")
}

/// The value of the Prometheus sample `name{..label..}`.
pub(super) fn metric(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        let (n, labels) = key.split_once('{').unwrap_or((key, ""));
        (n == name && labels.contains(label)).then(|| value.parse().ok())?
    })
}
