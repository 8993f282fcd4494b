//! A whole test deployment: N MariaDB servers holding the shard databases, a topology and config file, and the
//! proxy in front. Tests use it to talk through the proxy and to look behind it, at each shard database directly.

use std::path::{Path, PathBuf};

use mysql_async::Opts;
use mysql_async::prelude::{FromRow, Queryable};
use shardgate_topology::{TenantRef, Topology};
use tempfile::TempDir;

use super::layout::{self, Pin, ProxySettings, ShardSpec};
use super::mariadb::MariaDb;
use super::proxy::Proxy;

/// Name of the topology file inside the cluster's folder (the config refers to it by this relative path).
const TOPOLOGY_FILE: &str = "topology.yaml";

/// Name of the proxy config file inside the cluster's folder.
const CONFIG_FILE: &str = "shardgate.yaml";

/// Options for [`Cluster`]; start with [`Cluster::builder`].
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    /// How many MariaDB servers.
    n_backends: usize,
    /// How many key-range shards (a power of two).
    n_shards: usize,
    /// Proxy config knobs.
    settings: ProxySettings,
    /// Tenants pinned to shards.
    pins: Vec<Pin>,
}

impl ClusterBuilder {
    /// Sets the proxy's `max_allowed_packet` (bytes).
    pub fn max_allowed_packet(mut self, bytes: u64) -> Self {
        self.settings.max_allowed_packet = Some(bytes);
        self
    }

    /// Sets the auth plugin the proxy offers (`auth_plugin` in its config), e.g. `caching_sha2_password`.
    pub fn auth_plugin(mut self, plugin: &str) -> Self {
        self.settings.auth_plugin = Some(plugin.to_owned());
        self
    }

    /// Sets how many backend connections each shard's pool may hold (`pool.max_size`); 1 forces every statement
    /// on a shard onto the same backend connection.
    pub fn pool_max_size(mut self, connections: u32) -> Self {
        self.settings.pool_max_size = connections;
        self
    }

    /// Sets `allow_scatter_writes: true`: UPDATE and DELETE without a tenant run on every shard.
    pub fn allow_scatter_writes(mut self) -> Self {
        self.settings.allow_scatter_writes = true;
        self
    }

    /// Sets the proxy's `transaction_mode` (`single` or `multi`).
    pub fn transaction_mode(mut self, mode: &str) -> Self {
        self.settings.transaction_mode = Some(mode.to_owned());
        self
    }

    /// Sets how long a statement waits for a backend connection (`pool.acquire_timeout_ms`).
    pub fn acquire_timeout_ms(mut self, ms: u64) -> Self {
        self.settings.acquire_timeout_ms = ms;
        self
    }

    /// Adds a top-level line to the proxy's config (`statement_timeout_ms: 500`).
    pub fn config_line(mut self, line: &str) -> Self {
        self.settings.extra.push(line.to_owned());
        self
    }

    /// Adds a line to the `topology` section of the proxy's config (`etcd: {…}`).
    pub fn topology_line(mut self, line: &str) -> Self {
        self.settings.topology_extra.push(line.to_owned());
        self
    }

    /// Adds a line to the `pool` section of the proxy's config (`min_idle: 1`).
    pub fn pool_line(mut self, line: &str) -> Self {
        self.settings.pool_extra.push(line.to_owned());
        self
    }

    /// Pins `tenant` to the shard named `shard` (e.g. `"fe-"`).
    pub fn pin(mut self, tenant: u64, shard: &str) -> Self {
        self.pins.push(Pin {
            tenant,
            shard: shard.to_owned(),
        });
        self
    }

    /// Starts the backends, creates the shard databases, writes the files and starts the proxy.
    pub async fn start(self) -> Cluster {
        let backends = start_backends(self.n_backends).await;
        let shards = layout::shards(self.n_shards, self.n_backends);
        for (index, backend) in backends.iter().enumerate() {
            let creates: String = shards
                .iter()
                .filter(|shard| shard.backend == index)
                .map(|shard| format!("CREATE DATABASE `{}`;", shard.database))
                .collect();
            backend.exec(&creates).await;
        }
        let ports: Vec<u16> = backends.iter().map(MariaDb::port).collect();
        let topology_yaml = layout::topology_yaml(1, &ports, &shards, &self.pins);
        let topology = Topology::from_yaml_str(&topology_yaml).unwrap_or_else(|e| {
            panic!(
                "the harness wrote a topology the topology crate rejects: {e:?}\n{topology_yaml}"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("shardgate-e2e-")
            .tempdir()
            .expect("cannot create a temporary folder for the proxy's files");
        let config = write_proxy_files(dir.path(), &topology_yaml, &self.settings);
        let proxy = match Proxy::start(&config).await {
            Ok(proxy) => proxy,
            Err(exited) => panic!(
                "shardgate exited at startup ({}):\n{}",
                exited.status, exited.stderr
            ),
        };
        Cluster {
            proxy,
            backends,
            shards,
            topology_yaml,
            topology,
            dir,
        }
    }
}

/// A running test deployment. Drop order matters: the proxy dies before the servers it talks to.
pub struct Cluster {
    /// The proxy in front.
    proxy: Proxy,
    /// The MariaDB servers, indexed as in the topology (`db0`, `db1`, …).
    backends: Vec<MariaDb>,
    /// The shard layout, in the order of the topology file.
    shards: Vec<ShardSpec>,
    /// The topology file's text.
    topology_yaml: String,
    /// The same topology, parsed by the real topology crate: the oracle for where a tenant's rows belong.
    topology: Topology,
    /// Folder holding the topology and config files.
    dir: TempDir,
}

impl Cluster {
    /// Options for a cluster of `n_backends` servers holding `n_shards` shards.
    pub fn builder(n_backends: usize, n_shards: usize) -> ClusterBuilder {
        ClusterBuilder {
            n_backends,
            n_shards,
            settings: ProxySettings::default(),
            pins: Vec::new(),
        }
    }

    /// Stops the proxy (if it still runs) and starts a new one on the same files, with `env` added to its
    /// environment. The new proxy listens on a new port; [`Cluster::proxy_conn`] follows it.
    pub async fn restart_proxy(&mut self, env: &[(&str, &str)]) {
        let config = self.dir.path().join(CONFIG_FILE);
        // The old proxy must be gone before the new one recovers what it left.
        self.proxy.kill();
        self.proxy = match Proxy::start_with_env(&config, env).await {
            Ok(proxy) => proxy,
            Err(exited) => panic!(
                "shardgate exited at restart ({}):\n{}",
                exited.status, exited.stderr
            ),
        };
    }

    /// Starts a cluster of `n_backends` servers holding `n_shards` shards, with default settings.
    pub async fn start(n_backends: usize, n_shards: usize) -> Cluster {
        Self::builder(n_backends, n_shards).start().await
    }

    /// The proxy.
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// The proxy, mutably (to ask whether it is still running).
    pub fn proxy_mut(&mut self) -> &mut Proxy {
        &mut self.proxy
    }

    /// The proxy's MySQL port.
    pub fn proxy_port(&self) -> u16 {
        self.proxy.port()
    }

    /// `mysql://app:app@127.0.0.1:PORT/app`.
    pub fn proxy_url(&self) -> String {
        self.proxy.url()
    }

    /// Default mysql_async options for the proxy.
    pub fn proxy_opts(&self) -> Opts {
        self.proxy.opts()
    }

    /// A new client connection through the proxy, as `app` to keyspace `app`.
    pub async fn proxy_conn(&self) -> mysql_async::Conn {
        self.proxy.conn().await
    }

    /// Everything the proxy printed so far.
    pub fn proxy_stderr(&self) -> String {
        self.proxy.output()
    }

    /// The topology file's text.
    pub fn topology_yaml(&self) -> &str {
        &self.topology_yaml
    }

    /// The topology as the topology crate parsed it.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Folder holding `topology.yaml` and `shardgate.yaml`.
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The shards, in topology order.
    pub fn shards(&self) -> &[ShardSpec] {
        &self.shards
    }

    /// The MariaDB servers, in topology order.
    pub fn backends(&self) -> &[MariaDb] {
        &self.backends
    }

    /// Backend number `index`, to crash, restart or stop it.
    pub fn backend_mut(&mut self, index: usize) -> &mut MariaDb {
        &mut self.backends[index]
    }

    /// The server holding `shard`.
    pub fn backend_of(&self, shard: &ShardSpec) -> &MariaDb {
        &self.backends[shard.backend]
    }

    /// The shard with key-range name `name`.
    pub fn shard_named(&self, name: &str) -> &ShardSpec {
        self.shards
            .iter()
            .find(|shard| shard.name == name)
            .unwrap_or_else(|| panic!("no shard named {name:?}"))
    }

    /// The first shard (in file order) other than the one named `name`.
    pub fn another_shard(&self, name: &str) -> ShardSpec {
        self.shards
            .iter()
            .find(|shard| shard.name != name)
            .cloned()
            .unwrap_or_else(|| panic!("no shard besides {name:?}"))
    }

    /// The first shard (in file order) on another server than `shard`'s.
    pub fn shard_on_another_server(&self, shard: &ShardSpec) -> ShardSpec {
        self.shards
            .iter()
            .find(|other| other.backend != shard.backend)
            .cloned()
            .unwrap_or_else(|| panic!("no shard on another server than {:?}'s", shard.name))
    }

    /// Index (into [`Cluster::shards`]) of the shard the topology crate routes `tenant`'s rows of `table` to.
    /// Matched by name, so the harness does not depend on how the crate orders its shards.
    pub fn shard_index_for(&self, table: &str, tenant: u64) -> usize {
        let name = routed_shard_name(&self.topology, table, tenant);
        self.shards
            .iter()
            .position(|shard| shard.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "the topology routes tenant {tenant} to {name:?}, which the harness never wrote"
                )
            })
    }

    /// A plain database `flat` on the first server, holding every tenant in one place, after running `setup` in
    /// it: the reference side of differential tests. Returns a connection to it.
    pub async fn flat_database<S: AsRef<str>>(&self, setup: &[S]) -> mysql_async::Conn {
        let backend = &self.backends[0];
        backend.exec("CREATE DATABASE flat").await;
        let mut flat = backend.conn_db(Some("flat")).await;
        for sql in setup {
            flat.query_drop(sql.as_ref())
                .await
                .unwrap_or_else(|e| panic!("`{}` in flat: {e}", sql.as_ref()));
        }
        flat
    }

    /// `first` and the next tenant after it whose rows of `table` live on another shard.
    pub fn tenants_on_two_shards(&self, table: &str, first: u64) -> (u64, u64) {
        let shard = self.shard_index_for(table, first);
        let second = (first + 1..first + 1000)
            .find(|t| self.shard_index_for(table, *t) != shard)
            .expect("some tenant lands on another shard");
        (first, second)
    }

    /// The shard the topology crate routes `tenant`'s rows of `table` to.
    pub fn shard_for(&self, table: &str, tenant: u64) -> &ShardSpec {
        &self.shards[self.shard_index_for(table, tenant)]
    }

    /// Runs a query directly on `shard`'s database, behind the proxy's back.
    pub async fn query_shard<T: FromRow + Send + 'static>(
        &self,
        shard: &ShardSpec,
        sql: &str,
    ) -> Vec<T> {
        self.backend_of(shard)
            .query(Some(&shard.database), sql)
            .await
    }

    /// Runs `sql` (e.g. a `CREATE TABLE`) in every shard database, directly on the backends: the servers are
    /// worked on concurrently, the databases on one server one after another.
    pub async fn ddl_on_every_shard(&self, sql: &str) {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, backend) in self.backends.iter().enumerate() {
            let opts = backend.opts(None);
            let databases: Vec<String> = self
                .shards
                .iter()
                .filter(|s| s.backend == index)
                .map(|s| s.database.clone())
                .collect();
            let sql = sql.to_owned();
            tasks.spawn(async move {
                let mut conn = mysql_async::Conn::new(opts)
                    .await
                    .expect("cannot connect to a backend for DDL");
                for database in databases {
                    conn.query_drop(format!("USE `{database}`"))
                        .await
                        .expect("USE failed");
                    conn.query_drop(&sql)
                        .await
                        .unwrap_or_else(|e| panic!("`{sql}` failed in {database}: {e}"));
                }
                let _ = conn.disconnect().await;
            });
        }
        super::join_all(tasks).await;
    }
}

/// Name of the shard `topology` routes `tenant`'s rows of `table` to.
pub fn routed_shard_name(topology: &Topology, table: &str, tenant: u64) -> String {
    let id = topology
        .route(table, TenantRef::Int(tenant))
        .unwrap_or_else(|e| panic!("the topology cannot route tenant {tenant} of {table}: {e:?}"));
    topology
        .shards()
        .get(id.0 as usize)
        .map(|shard| shard.name.clone())
        .unwrap_or_else(|| {
            panic!("the topology routed tenant {tenant} to {id:?}, which it does not list")
        })
}

/// Starts `n` MariaDB servers concurrently.
async fn start_backends(n: usize) -> Vec<MariaDb> {
    let starting: Vec<_> = (0..n).map(|_| tokio::spawn(MariaDb::start())).collect();
    let mut backends = Vec::with_capacity(n);
    for task in starting {
        match task.await {
            Ok(backend) => backends.push(backend),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    backends
}

/// Writes `topology.yaml` and `shardgate.yaml` (which refers to the former by a relative path) into `dir`;
/// returns the config file's path.
pub fn write_proxy_files(dir: &Path, topology_yaml: &str, settings: &ProxySettings) -> PathBuf {
    write(&dir.join(TOPOLOGY_FILE), topology_yaml);
    let config = dir.join(CONFIG_FILE);
    write(&config, &layout::proxy_config_yaml(settings, TOPOLOGY_FILE));
    config
}

/// Writes a file the test cannot do without.
fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
