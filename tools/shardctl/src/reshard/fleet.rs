//! The proxies a workflow talks to, through their admin endpoints: read the served topology, send the next one to
//! every proxy, and wait until every one serves it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shardgate_topology::TopologySpec;

use crate::topology::pin::http;

/// Blocking HTTP on the runtime's blocking pool: the admin calls are few and short.
async fn call(
    admin: &str,
    method: &'static str,
    path: &'static str,
    body: String,
) -> anyhow::Result<(u16, String)> {
    let admin = admin.to_string();
    tokio::task::spawn_blocking(move || http(&admin, method, path, &body))
        .await
        .context("admin call")?
}

/// The topology the first proxy serves.
pub async fn served(admins: &[String]) -> anyhow::Result<TopologySpec> {
    let Some(admin) = admins.first() else {
        bail!("give at least one --admin address");
    };
    let (status, text) = call(admin, "GET", "/topology", String::new()).await?;
    if status != 200 {
        bail!("{admin}: GET /topology answered {status}: {}", text.trim());
    }
    Ok(TopologySpec::from_yaml_str(&text)?)
}

async fn version(admin: &str) -> anyhow::Result<u64> {
    let (status, text) = call(admin, "GET", "/topology/version", String::new()).await?;
    if status != 200 {
        bail!("{admin}: GET /topology/version answered {status}");
    }
    text.trim()
        .parse()
        .with_context(|| format!("{admin}: not a version: {text:?}"))
}

/// Sends `next` to every proxy (one that already serves it or a later version, from a shared source, is fine).
pub async fn publish(admins: &[String], next: &TopologySpec) -> anyhow::Result<()> {
    let yaml = next.to_yaml();
    for admin in admins {
        let (status, answer) = call(admin, "PUT", "/topology", yaml.clone()).await?;
        if status != 200 && version(admin).await? < next.version {
            bail!(
                "{admin}: the proxy refused topology version {} ({status}): {}",
                next.version,
                answer.trim()
            );
        }
    }
    Ok(())
}

/// With etcd, the versions every live proxy of the fleet acknowledged (`GET /topology/fleet`); `None` without.
async fn fleet_versions(admin: &str) -> Option<Vec<(String, u64)>> {
    let (status, body) = call(admin, "GET", "/topology/fleet", String::new())
        .await
        .ok()?;
    if status != 200 {
        return None;
    }
    let entries: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
    Some(
        entries
            .iter()
            .map(|e| {
                (
                    e["proxy"].as_str().unwrap_or("?").to_string(),
                    e["version"].as_u64().unwrap_or(0),
                )
            })
            .collect(),
    )
}

/// Waits until every proxy serves `version` or a later one — the ones given, and with etcd every live proxy of the
/// fleet; fails naming the laggard after `within`.
pub async fn wait_for(admins: &[String], version: u64, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    if let Some(first) = admins.first() {
        loop {
            let Some(fleet) = fleet_versions(first).await else {
                break;
            };
            let Some((laggard, served)) = fleet.into_iter().find(|(_, v)| *v < version) else {
                break;
            };
            if Instant::now() >= deadline {
                bail!(
                    "proxy {laggard} serves topology version {served}, not {version}, after {within:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for admin in admins {
        loop {
            let served = version_or_zero(admin).await;
            if served >= version {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "proxy {admin} serves topology version {served}, not {version}, after {within:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(())
}

/// Waits until no proxy has an open transaction on moving keys (`GET /reshard/inflight`); fails naming one that
/// still has after `within`.
pub async fn wait_drained(admins: &[String], within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    for admin in admins {
        loop {
            let (status, body) = call(admin, "GET", "/reshard/inflight", String::new()).await?;
            let open: u64 = if status == 200 {
                body.trim().parse().unwrap_or(u64::MAX)
            } else {
                u64::MAX
            };
            if open == 0 {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "proxy {admin} still has {open} open transactions on the moving keys after {within:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(())
}

async fn version_or_zero(admin: &str) -> u64 {
    version(admin).await.unwrap_or(0)
}
