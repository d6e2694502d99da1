//! `sandlab lab test DIR... [--keep]`: for each lab, start its playground, run the init
//! tasks, then for every checked task in DAG order assert that its check fails, run its
//! `solve`, and assert that the check passes (retried on the task's interval for up to
//! [`SETTLE`], as a learner's browser would see it turn green). Prints a table per lab and
//! exits 1 when anything failed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sandlab_core::SandboxId;
use sandlab_lab::{Lab, Task};
use sandlab_proto::ExecRequest;
use sandlab_runtime::manager::{CreateRequest, SandboxManager};
use sandlab_runtime::Playground;

use crate::config::Config;
use crate::Exit;

/// How long a check may take to pass after its solve (a service starting, say).
const SETTLE: Duration = Duration::from_secs(15);
const AGENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One row of the report.
struct Row {
    task: String,
    before: String,
    solve: String,
    after: String,
    ok: bool,
    /// Why a failing step failed: how it ended and the last lines it printed.
    notes: Vec<String>,
}

/// How a script ended when it did not exit 0: the way it ended (exit code, signal or
/// timeout) and the last lines of its stdout and stderr.
#[derive(Debug)]
struct Failure {
    how: String,
    tail: Vec<String>,
}

/// Lines of each stream kept in a failure's report.
const TAIL_LINES: usize = 5;

impl Failure {
    fn of(out: &sandlab_proto::ExecOutput, timeout: Duration) -> Failure {
        let how = out.exit.describe(timeout);
        let mut tail = Vec::new();
        for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let start = lines.len().saturating_sub(TAIL_LINES);
            tail.extend(lines[start..].iter().map(|l| format!("{name}: {l}")));
        }
        Failure { how, tail }
    }

    /// The report under the table, prefixed with the step that failed.
    fn notes(&self, step: &str) -> Vec<String> {
        let mut notes = vec![format!("{step}: {}", self.how)];
        notes.extend(self.tail.iter().map(|l| format!("  {l}")));
        notes
    }
}

/// Runs a task's script on a node: `Ok(Ok(()))` when it exits 0, `Ok(Err(failure))` when
/// it does not, `Err` when it cannot be run at all.
async fn run_on(
    mgr: &SandboxManager,
    nodes: &HashMap<String, SandboxId>,
    machine: &str,
    user: &str,
    script: &str,
    timeout: Duration,
) -> anyhow::Result<Result<(), Failure>> {
    let id = nodes
        .get(machine)
        .ok_or_else(|| anyhow::anyhow!("the playground has no node {machine:?}"))?;
    let agent = mgr.agent(id, AGENT_TIMEOUT).await?;
    let req = ExecRequest {
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        user: Some(user.to_owned()),
        timeout: Some(timeout),
        ..ExecRequest::default()
    };
    let out = agent.exec_collect(req, None, 64 * 1024).await?;
    if out.exit.code == Some(0) {
        Ok(Ok(()))
    } else {
        Ok(Err(Failure::of(&out, timeout)))
    }
}

fn mark(ok: bool, good: &str, bad: &str) -> String {
    if ok { good } else { bad }.to_owned()
}

/// Tests every checked task of a started playground.
async fn test_tasks(
    mgr: &SandboxManager,
    lab: &Lab,
    nodes: &HashMap<String, SandboxId>,
    bar: &ProgressBar,
) -> Vec<Row> {
    let mut rows = Vec::new();
    if lab.playground.cluster.is_some() {
        bar.set_message(format!("{}: making the cluster", lab.slug));
        let started = Instant::now();
        let up = bring_up_cluster(mgr, lab, nodes).await;
        let ok = up.is_ok();
        rows.push(Row {
            task: "(cluster)".into(),
            before: "-".into(),
            solve: match &up {
                Ok(()) => format!("up in {:.1}s", started.elapsed().as_secs_f64()),
                Err(_) => "CLUSTER FAILED".into(),
            },
            after: "-".into(),
            ok,
            notes: up.err().into_iter().collect(),
        });
        if !ok {
            return rows;
        }
    }
    for t in lab.init_tasks() {
        bar.set_message(format!("{}: init {}", lab.slug, t.id.as_str()));
        let ran = run_on(mgr, nodes, &t.machine, &t.user, &t.run, t.timeout).await;
        let ok = matches!(ran, Ok(Ok(())));
        let notes = match &ran {
            Ok(Ok(())) => Vec::new(),
            Ok(Err(f)) => f.notes("init"),
            Err(e) => vec![format!("init: could not run: {e:#}")],
        };
        rows.push(Row {
            task: t.id.as_str().to_owned(),
            before: "-".into(),
            solve: mark(ok, "init ok", "INIT FAILED"),
            after: "-".into(),
            ok,
            notes,
        });
        if !ok {
            return rows;
        }
    }
    for t in lab.checked_tasks() {
        bar.set_message(format!("{}: {}", lab.slug, t.id.as_str()));
        rows.push(test_task(mgr, nodes, t).await);
    }
    rows
}

/// Makes the playground's nodes the cluster the lab asks for.
async fn bring_up_cluster(
    mgr: &SandboxManager,
    lab: &Lab,
    nodes: &HashMap<String, SandboxId>,
) -> Result<(), String> {
    let mut agents = HashMap::new();
    for (name, id) in nodes {
        let agent = mgr
            .agent(id, AGENT_TIMEOUT)
            .await
            .map_err(|e| format!("node {name} cannot be reached: {e}"))?;
        agents.insert(name.clone(), agent);
    }
    sandlab_server::cluster::bring_up(lab, &agents)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn test_task(mgr: &SandboxManager, nodes: &HashMap<String, SandboxId>, t: &Task) -> Row {
    let check = || run_on(mgr, nodes, &t.machine, &t.user, &t.run, t.timeout);
    let before = check().await;
    let failed_first = matches!(before, Ok(Err(_)));
    let solve_timeout = t.timeout.max(Duration::from_secs(60));
    let solved = match &t.solve {
        Some(s) => Some(run_on(mgr, nodes, &t.machine, &t.user, s, solve_timeout).await),
        None => None,
    };
    let start = Instant::now();
    let mut last = None;
    let passed = loop {
        match check().await {
            Ok(Ok(())) => break true,
            other if start.elapsed() >= SETTLE => {
                last = Some(other);
                break false;
            }
            _ => tokio::time::sleep(t.interval).await,
        }
    };
    let mut notes = Vec::new();
    let solve_text = match &solved {
        None => {
            notes.push(
                "solve: the task has no `solve`, so lab test cannot check that it can pass".into(),
            );
            "NO SOLVE".to_owned()
        }
        Some(Ok(Ok(()))) => "ok".into(),
        Some(Ok(Err(f))) => {
            notes.extend(f.notes("solve"));
            if f.how.starts_with("timed out") {
                "TIMED OUT"
            } else {
                "FAILED"
            }
            .into()
        }
        Some(Err(e)) => {
            notes.push(format!("solve: could not run: {e:#}"));
            format!("error: {e}")
        }
    };
    match &last {
        Some(Ok(Err(f))) => notes.extend(f.notes("check after solve")),
        Some(Err(e)) => notes.push(format!("check after solve: could not run: {e:#}")),
        _ => {}
    }
    Row {
        task: t.id.as_str().to_owned(),
        before: match before {
            Ok(Err(_)) => "fails (ok)".into(),
            Ok(Ok(())) => "PASSES ALREADY".into(),
            Err(e) => format!("error: {e}"),
        },
        solve: solve_text,
        after: mark(passed, "passes (ok)", "STILL FAILS"),
        ok: failed_first && passed && t.solve.is_some(),
        notes,
    }
}

/// Starts `lab`'s nodes; they are owned by this process (removed if it dies) unless kept.
async fn start(
    cfg: &Config,
    mgr: &SandboxManager,
    lab: &Lab,
    keep: bool,
) -> anyhow::Result<HashMap<String, SandboxId>> {
    let mut nodes = HashMap::new();
    let playground =
        Playground::named_after(SandboxId::generate().as_str(), lab.playground.node_names());
    for node in &lab.playground.nodes {
        let created = crate::image_cmd::create_building_image(
            cfg,
            mgr,
            CreateRequest {
                image: node.image.clone(),
                limits: node.limits.clone(),
                ttl: lab.playground.ttl,
                hostname: Some(node.name.clone()),
                owner_process: (!keep).then(|| mgr.holder().clone()),
                playground: Some(playground.clone()),
                ..CreateRequest::default()
            },
        )
        .await;
        match created {
            Ok(rec) => {
                nodes.insert(node.name.clone(), rec.id);
            }
            Err(e) => {
                stop(mgr, &nodes).await;
                return Err(anyhow::anyhow!("node {} could not start: {e}", node.name));
            }
        }
    }
    Ok(nodes)
}

async fn stop(mgr: &SandboxManager, nodes: &HashMap<String, SandboxId>) {
    for id in nodes.values() {
        if let Err(e) = mgr.remove(id).await {
            tracing::warn!(sandbox.id = %id, error = %e, "could not remove a playground node");
        }
    }
}

pub async fn test(cfg: &Config, dirs: &[PathBuf], keep: bool) -> anyhow::Result<u8> {
    let (labs, problems) = crate::lab_cmd::load(cfg, dirs);
    for p in &problems {
        eprintln!("{p}");
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "{} problems in the labs; fix them first (`sandlab lab validate`)",
            problems.len()
        );
    }
    let mgr = crate::sandbox_cmd::manager(cfg, crate::drivers::Use::Serve).await?;
    mgr.reconcile().await?;
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = ProgressBar::new(labs.len() as u64);
        b.set_style(ProgressStyle::with_template(
            "{spinner} [{pos}/{len}] {msg}",
        )?);
        b.enable_steady_tick(Duration::from_millis(120));
        b
    } else {
        ProgressBar::hidden()
    };
    let mut failed = 0;
    for lab in &labs {
        let started = Instant::now();
        bar.set_message(format!(
            "{}: starting {} node(s)",
            lab.slug,
            lab.playground.nodes.len()
        ));
        let rows = match start(cfg, &mgr, lab, keep).await {
            Ok(nodes) => {
                let rows = test_tasks(&mgr, lab, &nodes, &bar).await;
                if keep {
                    let ids: Vec<String> =
                        nodes.iter().map(|(n, id)| format!("{n}={id}")).collect();
                    bar.suspend(|| println!("kept {}: {}", lab.slug, ids.join(" ")));
                } else {
                    stop(&mgr, &nodes).await;
                }
                rows
            }
            Err(e) => vec![Row {
                task: "(playground)".into(),
                before: "-".into(),
                solve: format!("error: {e}"),
                after: "-".into(),
                ok: false,
                notes: Vec::new(),
            }],
        };
        bar.inc(1);
        let lab_ok = rows.iter().all(|r| r.ok);
        failed += usize::from(!lab_ok);
        bar.suspend(|| print_table(lab, &rows, lab_ok, started.elapsed()));
    }
    bar.finish_and_clear();
    println!("{} labs passed, {} failed", labs.len() - failed, failed);
    if failed == 0 {
        Ok(0)
    } else {
        Err(Exit(1).into())
    }
}

fn print_table(lab: &Lab, rows: &[Row], ok: bool, took: Duration) {
    println!(
        "{} {} ({:.1}s)",
        if ok { "PASS" } else { "FAIL" },
        lab.slug,
        took.as_secs_f64()
    );
    println!(
        "  {:<24} {:<16} {:<16} AFTER SOLVE",
        "TASK", "BEFORE SOLVE", "SOLVE"
    );
    for r in rows {
        println!(
            "  {:<24} {:<16} {:<16} {}",
            r.task, r.before, r.solve, r.after
        );
    }
    for r in rows.iter().filter(|r| !r.ok && !r.notes.is_empty()) {
        println!("  {}:", r.task);
        for n in &r.notes {
            println!("    {n}");
        }
    }
}
