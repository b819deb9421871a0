//! Delivering alerts: every round the CMS says what opened and what cleared; each
//! commune's notices go to its webhook (JSON) and its email recipients (SMTP, through the
//! deployment's mail relay), one message per notice, or one digest when many come at once.

use std::sync::Arc;
use std::time::Duration;

use cms::alerts::{AlertState, DIGEST_AT, Delivery, Notice, kind_label};
use cms::i18n::Lang;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::hub::Hub;

/// How alerts leave.
#[derive(Clone, Debug)]
pub struct AlertConfig {
    /// Seconds between rounds.
    pub interval: Duration,
    /// `smtp://host:port` of the mail relay; none, no email.
    pub smtp_url: Option<String>,
    /// The sender of alert emails.
    pub mail_from: String,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            interval: Duration::from_secs(30),
            smtp_url: None,
            mail_from: "Loa Làng <loa-lang@localhost>".into(),
        }
    }
}

/// Runs rounds for as long as the hub lives.
pub fn spawn(hub: &Arc<Hub>, config: AlertConfig) {
    let weak = Arc::downgrade(hub);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok();
    let mailer = config.smtp_url.as_deref().and_then(|u| match smtp(u) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!("alert emails off: {e}");
            None
        }
    });
    tokio::spawn(async move {
        let mut state = AlertState::default();
        let mut tick = tokio::time::interval(config.interval);
        loop {
            tick.tick().await;
            let Some(hub) = weak.upgrade() else { break };
            let deliveries = match hub.cms().evaluate_alerts(&mut state).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("alerts: {e}");
                    continue;
                }
            };
            for d in deliveries {
                deliver(&d, http.as_ref(), mailer.as_ref(), &config.mail_from).await;
            }
        }
    });
}

/// A transport to the relay at `smtp://host:port` (plain SMTP: a relay on the host or the
/// local network; it does the onward TLS).
fn smtp(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let rest = url
        .strip_prefix("smtp://")
        .ok_or_else(|| format!("{url}: an smtp://host:port address is needed"))?;
    let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("{url}: bad port"))?),
        None => (rest, 25),
    };
    Ok(
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(Duration::from_secs(20)))
            .build(),
    )
}

/// "Cụm loa 1 (Thôn Đông): mất kết nối".
fn line(n: &Notice) -> String {
    let what = kind_label(Lang::Vi, n.kind, n.recovered);
    let detail = if n.detail.is_empty() {
        String::new()
    } else {
        format!(" — {}", n.detail)
    };
    format!("{} ({}): {what}{detail}", n.node, n.village)
}

fn json(n: &Notice, commune: &str) -> serde_json::Value {
    serde_json::json!({
        "event": if n.recovered { "recovered" } else { "alert" },
        "kind": n.kind,
        "commune": commune,
        "node_id": n.node_id,
        "node": n.node,
        "village": n.village,
        "detail": n.detail,
        "message": line(n),
        "at": n.at.to_rfc3339(),
    })
}

/// (subject, body, webhook JSON) of each message a delivery makes: one per notice, or
/// one digest of them all.
fn messages(d: &Delivery) -> Vec<(String, String, serde_json::Value)> {
    if d.notices.len() >= DIGEST_AT {
        let down = d.notices.iter().filter(|n| !n.recovered).count();
        let subject = format!(
            "[Loa Làng] {}: {} cảnh báo, {} đã hết",
            d.commune,
            down,
            d.notices.len() - down
        );
        let body = d.notices.iter().map(line).collect::<Vec<_>>().join("\n");
        let all: Vec<_> = d.notices.iter().map(|n| json(n, &d.commune)).collect();
        vec![(
            subject,
            body,
            serde_json::json!({ "event": "digest", "commune": d.commune, "alerts": all }),
        )]
    } else {
        d.notices
            .iter()
            .map(|n| {
                (
                    format!("[Loa Làng] {}", line(n)),
                    line(n),
                    json(n, &d.commune),
                )
            })
            .collect()
    }
}

async fn deliver(
    d: &Delivery,
    http: Option<&reqwest::Client>,
    mailer: Option<&AsyncSmtpTransport<Tokio1Executor>>,
    from: &str,
) {
    for (subject, body, payload) in messages(d) {
        if let (Some(http), false) = (http, d.settings.webhook_url.is_empty()) {
            if let Err(e) = http
                .post(&d.settings.webhook_url)
                .json(&payload)
                .send()
                .await
            {
                tracing::warn!("alert webhook: {e}");
            }
        }
        let Some(mailer) = mailer else { continue };
        for to in &d.settings.emails {
            match email(from, to, &subject, &body) {
                Ok(m) => {
                    if let Err(e) = mailer.send(m).await {
                        tracing::warn!(to, "alert email: {e}");
                    }
                }
                Err(e) => tracing::warn!(to, "alert email: {e}"),
            }
        }
    }
}

fn email(from: &str, to: &str, subject: &str, body: &str) -> Result<Message, String> {
    let from: Mailbox = from.parse().map_err(|e| format!("sender {from}: {e}"))?;
    let to: Mailbox = to.parse().map_err(|e| format!("recipient {to}: {e}"))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(format!(
            "{body}\n\n-- \nLoa Làng: hệ thống truyền thanh thông minh\n"
        ))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use cms::alerts::{AlertSettings, Delivery, Notice};

    fn notice(i: i64, recovered: bool) -> Notice {
        Notice {
            kind: "offline",
            recovered,
            node_id: i,
            node: format!("Cụm loa {i}"),
            village: "Thôn Đông".into(),
            detail: String::new(),
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_few_notices_go_one_by_one_and_many_as_one_digest() {
        let d = |n: i64| Delivery {
            commune: "Xã Hạ Long".into(),
            settings: AlertSettings::default(),
            notices: (1..=n).map(|i| notice(i, i == 1)).collect(),
        };
        let few = super::messages(&d(2));
        assert_eq!(few.len(), 2);
        assert_eq!(few[0].0, "[Loa Làng] Cụm loa 1 (Thôn Đông): đã kết nối lại");
        assert_eq!(few[1].2["event"], "alert");
        // A cell outage: twelve nodes at once are one message.
        let many = super::messages(&d(12));
        assert_eq!(many.len(), 1);
        assert_eq!(many[0].0, "[Loa Làng] Xã Hạ Long: 11 cảnh báo, 1 đã hết");
        assert_eq!(many[0].1.lines().count(), 12);
        assert_eq!(many[0].2["alerts"].as_array().map(Vec::len), Some(12));
    }
}
