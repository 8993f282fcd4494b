//! One round against one target: connect every client first, then run them closed or open loop until the
//! deadline, give in-flight operations a bounded grace period, and merge what each connection measured.
//!
//! Every wait is bounded: connecting, each operation (by the end of the grace period), and disconnecting, so a
//! round ends on time even against a server that stops answering.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use crate::pacer::Pacer;
use crate::progress::{Counters, Ticker};
use crate::round::{CLIENT_ERROR, Round, error_code};
use crate::schedule::Schedule;
use crate::tenants::{Classes, Picker};
use crate::workload::{Body, Generator, Mix, Op};

/// Longest wait for a connection to be set up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections being opened at once while a round sets up: 10,000 then take seconds, not minutes, and the
/// target's listen backlog never sees more than this many at a time.
const CONNECT_CONCURRENCY: usize = 64;
/// Longest wait for a polite disconnect at the end of a round.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How a round runs, the same for every target.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Concurrent connections.
    pub connections: usize,
    /// From the start of the round to the deadline, after which nothing new is sent.
    pub duration: Duration,
    /// After the deadline, how long operations already sent may take to finish.
    pub grace: Duration,
    /// Open loop at this total rate (operations per second); closed loop when `None`.
    pub rate: Option<f64>,
    /// What to send.
    pub mix: Mix,
    /// Rows per tenant, to pick ids.
    pub rows_per_tenant: u64,
    /// Tenant shares.
    pub picker: Arc<Picker>,
    /// Report classes.
    pub classes: Classes,
}

/// The instants one round is measured against.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// When every connection was ready.
    start: Instant,
    /// Nothing is sent from here on.
    deadline: Instant,
    /// Operations still unanswered here are given up on.
    give_up: Instant,
}

/// Runs one round of `plan` against `url`; `label` prefixes the live progress line.
pub async fn run_round(plan: &Plan, url: &str, label: String) -> anyhow::Result<Round> {
    let opts = Opts::from_url(url).with_context(|| format!("target URL {}", crate::redact(url)))?;
    let conns = connect_all(&opts, plan.connections).await?;
    let pacer = match plan.rate {
        Some(_) => Some(Arc::new(
            Pacer::start().context("starting the pacer thread")?,
        )),
        None => None,
    };
    let start = Instant::now();
    let clock = Clock {
        start,
        deadline: start + plan.duration,
        give_up: start + plan.duration + plan.grace,
    };
    let duration = plan.duration;
    let counters = Arc::new(Counters::default());
    let ticker = Ticker::start(label, counters.clone(), start);
    let mut tasks = Vec::with_capacity(plan.connections);
    for (worker, conn) in conns.into_iter().enumerate() {
        let mut client = Client {
            conn: Some(conn),
            opts: opts.clone(),
            generator: Generator::new(
                plan.picker.clone(),
                plan.mix,
                plan.rows_per_tenant,
                worker as u64,
            ),
            classes: plan.classes,
            clock,
            counters: counters.clone(),
            round: Round::default(),
        };
        let pacing = plan
            .rate
            .zip(pacer.clone())
            .map(|(rate, p)| (Schedule::new(rate, plan.connections, worker), p));
        tasks.push(tokio::spawn(async move {
            match pacing {
                Some((schedule, pacer)) => client.open_loop(schedule, duration, &pacer).await,
                None => client.closed_loop().await,
            }
            client.round.elapsed = clock.start.elapsed();
            if let Some(conn) = client.conn.take() {
                let _ = timeout(DISCONNECT_TIMEOUT, conn.disconnect()).await;
            }
            client.round
        }));
    }
    let mut total = Round::default();
    for t in tasks {
        total.merge(&t.await.context("connection task")?);
    }
    drop(ticker);
    Ok(total)
}

/// Opens `n` connections, [`CONNECT_CONCURRENCY`] at a time; fails on the first that cannot be opened, saying how
/// many were open then.
async fn connect_all(opts: &Opts, n: usize) -> anyhow::Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    let mut opening = JoinSet::new();
    let mut started = 0;
    while conns.len() < n {
        while started < n && opening.len() < CONNECT_CONCURRENCY {
            let opts = opts.clone();
            opening.spawn(async move { connect(&opts).await });
            started += 1;
        }
        let Some(joined) = opening.join_next().await else {
            break;
        };
        let conn = joined
            .context("connecting task")?
            .with_context(|| format!("{} of {n} connections were open", conns.len()))?;
        conns.push(conn);
    }
    Ok(conns)
}

/// Opens one connection, waiting at most [`CONNECT_TIMEOUT`].
async fn connect(opts: &Opts) -> anyhow::Result<Conn> {
    let conn = timeout(CONNECT_TIMEOUT, Conn::new(opts.clone()))
        .await
        .context("connecting: timed out")?
        .context("connecting")?;
    Ok(conn)
}

/// One connection's state during a round.
struct Client {
    /// The connection; `None` after it broke and could not be reopened.
    conn: Option<Conn>,
    /// How to reopen it.
    opts: Opts,
    /// What to send.
    generator: Generator,
    /// Report classes.
    classes: Classes,
    /// The round's instants.
    clock: Clock,
    /// Live progress.
    counters: Arc<Counters>,
    /// What this connection measured.
    round: Round,
}

/// How an operation ended.
enum Outcome {
    /// Answered (successfully or not); the client may go on.
    Answered,
    /// Unanswered at the end of the grace period, or the connection is gone: the client stops.
    Stop,
}

impl Client {
    /// Closed loop: operations back to back until the deadline, each timed from its actual send.
    async fn closed_loop(&mut self) {
        while Instant::now() < self.clock.deadline {
            let sent = Instant::now();
            let op = self.generator.next(sent - self.clock.start);
            if let Outcome::Stop = self.send(&op, sent).await {
                return;
            }
        }
    }

    /// Open loop: each operation at its slot of `schedule`, timed from that slot. Stops sending at the deadline;
    /// slots it did not reach by then (it was behind) are counted as unsent.
    async fn open_loop(&mut self, schedule: Schedule, duration: Duration, pacer: &Pacer) {
        let due = schedule.due_before(duration);
        let mut k = 0;
        while k < due && Instant::now() < self.clock.deadline {
            let at = schedule.intended(k);
            let intended = self.clock.start + at;
            pacer.sleep_until(intended.into_std()).await;
            self.round.send_lag.record(intended.elapsed());
            let op = self.generator.next(at);
            k += 1;
            if let Outcome::Stop = self.send(&op, intended).await {
                break;
            }
        }
        for j in k..due {
            let tenant = self.generator.tenant(schedule.intended(j));
            self.round.unsent(self.classes.of(tenant));
        }
    }

    /// Sends `op` and records its latency from `from`.
    async fn send(&mut self, op: &Op, from: Instant) -> Outcome {
        let class = self.classes.of(op.tenant);
        let Some(conn) = self.conn.as_mut() else {
            return Outcome::Stop;
        };
        match timeout_at(self.clock.give_up, execute(conn, &op.body)).await {
            Err(_) => {
                // The connection is mid-reply; it is dropped, not reused.
                self.round.timeout(class);
                self.conn = None;
                Outcome::Stop
            }
            Ok(result) => {
                let error = result.err();
                self.round.record(class, from.elapsed(), error.as_ref());
                self.counters.add(error.is_some());
                match error {
                    Some(e) if error_code(&e) == CLIENT_ERROR => self.reconnect().await,
                    _ => Outcome::Answered,
                }
            }
        }
    }

    /// Replaces a broken connection, if that can be done before the deadline.
    async fn reconnect(&mut self) -> Outcome {
        self.conn = None;
        match timeout_at(self.clock.deadline, Conn::new(self.opts.clone())).await {
            Ok(Ok(conn)) => {
                self.conn = Some(conn);
                Outcome::Answered
            }
            _ => Outcome::Stop,
        }
    }
}

/// Runs one operation: a statement, or BEGIN, its statements and COMMIT (rolled back if a statement fails).
async fn execute(conn: &mut Conn, body: &Body) -> Result<(), mysql_async::Error> {
    match body {
        Body::One(sql) => conn.query_drop(sql.as_str()).await,
        Body::Transaction(stmts) => {
            conn.query_drop("BEGIN").await?;
            for sql in stmts {
                if let Err(e) = conn.query_drop(sql.as_str()).await {
                    // Best effort: the operation already failed with `e`, which is what gets counted.
                    let _ = conn.query_drop("ROLLBACK").await;
                    return Err(e);
                }
            }
            conn.query_drop("COMMIT").await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connecting_fails_on_a_closed_port_and_says_how_many_were_open() {
        // A port that was free a moment ago: nothing listens there, so every connect is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let opts = Opts::from_url(&format!("mysql://u@127.0.0.1:{port}/d")).unwrap();
        let err = connect_all(&opts, 200).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("0 of 200 connections were open"),
            "{err:#}"
        );
    }
}
