//! `stats`: resource usage computed from `/containers/{id}/stats` the way the docker
//! CLI computes it (CPU delta over system delta, memory minus inactive file cache).

use std::io::IsTerminal;

use clap::Args;
use serde_json::Value;

use super::client::Ctx;
use super::format::{self, trunc_id};
use super::units;

/// `stats` arguments.
#[derive(Args, Debug)]
pub(crate) struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    pub(crate) no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    pub(crate) no_trunc: bool,
    /// Containers (default: all running).
    pub(crate) containers: Vec<String>,
}

fn f(v: &Value, ptr: &str) -> f64 {
    v.pointer(ptr).and_then(Value::as_f64).unwrap_or(0.0)
}

/// One `stats` table row from a stats JSON document.
pub(crate) fn stats_row(s: &Value, trunc: bool) -> String {
    let cpu_delta =
        f(s, "/cpu_stats/cpu_usage/total_usage") - f(s, "/precpu_stats/cpu_usage/total_usage");
    let sys_delta = f(s, "/cpu_stats/system_cpu_usage") - f(s, "/precpu_stats/system_cpu_usage");
    let mut online = f(s, "/cpu_stats/online_cpus");
    if online == 0.0 {
        online = s
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map_or(0.0, |a| a.len() as f64);
    }
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let usage = f(s, "/memory_stats/usage");
    // cgroup v1 reports total_inactive_file, v2 inactive_file; docker subtracts it.
    let cache = s
        .pointer("/memory_stats/stats/total_inactive_file")
        .or_else(|| s.pointer("/memory_stats/stats/inactive_file"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let mem = if cache < usage { usage - cache } else { usage };
    let limit = f(s, "/memory_stats/limit");
    let mem_pct = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s.get("networks").and_then(Value::as_object) {
        for n in nets.values() {
            rx += f(n, "/rx_bytes");
            tx += f(n, "/tx_bytes");
        }
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in s
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match e
            .get("op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("read") => rd += f(e, "/value"),
            Some("write") => wr += f(e, "/value"),
            _ => {}
        }
    }
    let id = s.get("id").and_then(Value::as_str).unwrap_or("");
    let name = s
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('/');
    let h = |x: f64| units::human_size_prec(x, 3);
    format!(
        "{}\t{}\t{:.2}%\t{} / {}\t{:.2}%\t{} / {}\t{} / {}\t{}",
        if trunc { trunc_id(id) } else { id.to_string() },
        name,
        cpu,
        units::bytes_size(mem),
        units::bytes_size(limit),
        mem_pct,
        h(rx),
        h(tx),
        h(rd),
        h(wr),
        s.pointer("/pids_stats/current")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    )
}

const HEADER: &str =
    "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS";

/// `stats`.
pub(crate) async fn stats(ctx: &Ctx, a: StatsArgs) -> anyhow::Result<()> {
    let names: Vec<String> = if a.containers.is_empty() {
        let body = ctx
            .raw
            .call(
                "GET",
                &format!("/containers/json?all={}", u8::from(a.all)),
                &[],
                None,
            )
            .await?;
        let list: Vec<Value> = serde_json::from_slice(&body)?;
        list.iter()
            .filter_map(|c| c.get("Id").and_then(Value::as_str).map(str::to_string))
            .collect()
    } else {
        a.containers.clone()
    };
    let clear = !a.no_stream && std::io::stdout().is_terminal();
    loop {
        let mut lines = vec![HEADER.to_string()];
        for n in &names {
            let body = ctx
                .raw
                .call("GET", &format!("/containers/{n}/stats?stream=0"), &[], None)
                .await?;
            let v: Value = serde_json::from_slice(&body)?;
            lines.push(stats_row(&v, !a.no_trunc));
        }
        if clear {
            print!("\x1b[2J\x1b[H");
        }
        print!("{}", format::tabwrite(&lines));
        if a.no_stream {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn computes_docker_stats_columns() {
        let s = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 2_097_152, "limit": 8_388_608, "stats": {"total_inactive_file": 1_048_576}},
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 0}]},
            "pids_stats": {"current": 3}
        });
        assert_eq!(
            stats_row(&s, true),
            "0123456789ab\tweb\t40.00%\t1MiB / 8MiB\t12.50%\t1kB / 2kB\t4.1kB / 0B\t3"
        );
    }
}
