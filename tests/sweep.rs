//! Sweeps as jobs: the plan (jobs, dependencies, waves), the refusal of a
//! job whose dependency is not finished, and the jobs of a sweep run as
//! concurrent processes, wave by wave, merging into the report of a single
//! process.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};

use burn_lottery::imp::{Branch, Condition, Controls, Silent};
use burn_lottery::sweep::{JobState, StabilitySpec, Sweep, SweepError, SweepSpec};

use crate::common::{data, init, ndarray, tiny_imp_config};
use crate::concurrency::{spawn_command, sweep};

#[test]
fn the_plan_orders_jobs_after_their_dependencies() {
    let sweep = sweep();
    let jobs = sweep.jobs();
    // Per experiment: 3 main levels, 2 control levels, and a stability copy
    // per level and data-order seed 0 and 7, except the copies that are the
    // main line's own network: the experiment's own data-order seed, at
    // every level but the dense one when k > 0 (the main line trained it
    // from initialization, not from k).
    let mut expected = 0;
    for seed in [0, 1] {
        for k in [0, 5] {
            let copies = (0..=2usize)
                .flat_map(|level| [0, 7].map(|c| (level, c)))
                .filter(|&(level, c)| c != seed || (level == 0 && k > 0))
                .count();
            expected += 3 + 2 + copies;
        }
    }
    assert_eq!(expected, 2 * 5 + 3 + 4 + 2 * (5 + 6));
    assert_eq!(jobs.len(), expected);
    for job in jobs {
        assert!(job.depends_on.iter().all(|&d| d < job.index), "{job}");
        for &d in &job.depends_on {
            let dep = &jobs[d];
            assert!(dep.wave < job.wave);
            assert_eq!(dep.experiment, job.experiment);
            assert_eq!(
                dep.level,
                job.level - usize::from(job.branch == Branch::Main)
            );
            assert_eq!(dep.branch, Branch::Main);
        }
        let expected_deps = usize::from(job.branch != Branch::Main || job.level > 0);
        assert_eq!(job.depends_on.len(), expected_deps, "{job}");
        // Wave w: the main line's level w, everything else of level w - 1.
        let offset = usize::from(job.branch != Branch::Main);
        assert_eq!(job.wave, job.level + offset, "{job}");
    }
    let keys: HashSet<_> = jobs
        .iter()
        .map(|j| (j.experiment, j.branch, j.level))
        .collect();
    assert_eq!(keys.len(), jobs.len(), "no job twice");
    let waves = sweep.waves();
    assert_eq!(waves.len(), 4);
    assert_eq!(waves.first().unwrap().0, 0);
    assert_eq!(waves.last().unwrap().1, jobs.len() - 1);
}

#[test]
fn levels_that_do_not_build_on_each_other_wait_only_for_the_dense_level() {
    use burn_lottery::imp::{ImpConfig, PruningMethod};
    use burn_lottery::prune::{DynamicConfig, GradualConfig};
    let spec = SweepSpec {
        network: "tiny".into(),
        iterations: Some(20),
        levels: 3,
        rewind_points: vec![5],
        seeds: vec![0],
        controls: Controls::random(true),
        stability: StabilitySpec::default(),
    };
    let methods = [
        PruningMethod::OneShot,
        PruningMethod::Gradual(GradualConfig::new()),
        PruningMethod::Dynamic(DynamicConfig::rigl()),
    ];
    for method in methods {
        let base = ImpConfig {
            method,
            ..tiny_imp_config("s", 3)
        };
        let sweep = Sweep::new(spec.clone(), &base, Default::default()).unwrap();
        let jobs = sweep.jobs();
        for job in jobs
            .iter()
            .filter(|j| j.branch == Branch::Main && j.level > 0)
        {
            let dep = &jobs[job.depends_on[0]];
            assert_eq!(
                (dep.branch, dep.level, job.wave),
                (Branch::Main, 0, 1),
                "{job}"
            );
        }
        // Three levels side by side after the dense one, controls after
        // their level: three waves instead of IMP's five.
        assert_eq!(sweep.waves().len(), 3);
    }
}

#[test]
fn random_prune_copies_wait_for_the_control() {
    let spec = SweepSpec {
        network: "tiny".into(),
        iterations: Some(20),
        levels: 1,
        rewind_points: vec![5],
        seeds: vec![0],
        controls: Controls::random(true),
        stability: StabilitySpec {
            copies: vec![1, 2],
            conditions: vec![Condition::Imp, Condition::RandomPrune],
        },
    };
    let sweep = Sweep::new(spec, &tiny_imp_config("s", 1), Default::default()).unwrap();
    let copy = sweep
        .jobs()
        .iter()
        .find(|j| {
            j.branch
                == Branch::Stability {
                    condition: Condition::RandomPrune,
                    seed: 1,
                }
        })
        .unwrap();
    let dep = &sweep.jobs()[copy.depends_on[0]];
    assert_eq!((dep.branch, dep.level), (Branch::RandomPrune, 1));
    assert_eq!(copy.wave, 3);
}

#[test]
fn invalid_sweeps_are_refused_with_the_reason() {
    let base = tiny_imp_config("s", 1);
    let spec = |f: fn(&mut SweepSpec)| {
        let mut spec = SweepSpec {
            network: "tiny".into(),
            iterations: None,
            levels: 1,
            rewind_points: vec![0],
            seeds: vec![0],
            controls: Controls::default(),
            stability: StabilitySpec::default(),
        };
        f(&mut spec);
        Sweep::new(spec, &base, Default::default())
            .unwrap_err()
            .to_string()
    };
    assert!(spec(|s| s.seeds.clear()).contains("must not be empty"));
    assert!(spec(|s| s.rewind_points = vec![31]).contains("beyond the training length 30"));
    assert!(spec(|s| s.stability.copies = vec![3]).contains("at least two"));
    assert!(
        spec(|s| s.stability.conditions = vec![Condition::RandomPrune])
            .contains("controls.random_prune")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sweep.json");
    std::fs::write(&file, r#"{ "network": "x", "levels": 1, "seeds": [0] }"#).unwrap();
    let err = SweepSpec::from_file(&file).unwrap_err();
    assert!(matches!(err, SweepError::File { .. }), "{err}");
    assert!(err.to_string().contains("rewind_points"), "{err}");
}

#[test]
fn a_job_whose_dependency_is_not_finished_is_refused() {
    let sweep = sweep();
    let dir = tempfile::tempdir().unwrap();
    let job = sweep.jobs().iter().find(|j| j.level == 1).unwrap();
    let err = sweep
        .run_job(
            job.index,
            dir.path(),
            &ndarray(),
            &data(),
            init,
            &mut Silent,
        )
        .unwrap_err();
    assert!(
        matches!(err, SweepError::NotReady { job: j, .. } if j == job.index),
        "{err}"
    );
    assert!(matches!(
        sweep.status(dir.path())[job.index],
        JobState::Waiting(_)
    ));
    let err = sweep
        .run_job(10_000, dir.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

/// Runs every job of the sweep as its own process, 4 at a time, each
/// started when its dependencies are finished.
fn run_locally(sweep: &Sweep, root: &Path) {
    let devices = ["ndarray".to_string(), "ndarray:b".to_string()];
    let finished = sweep
        .run_local(root, 4, &devices, |job, _| {
            let mut command = spawn_command(&format!("job {} {job}", root.display()));
            command.stdout(Stdio::null()).stderr(Stdio::inherit());
            command
        })
        .unwrap();
    let mut jobs: Vec<usize> = finished.iter().map(|j| j.index).collect();
    jobs.sort_unstable();
    assert_eq!(jobs, (0..sweep.jobs().len()).collect::<Vec<_>>());
}

/// Starts, in a shell, each job's `start`, then `end` line to `log`.
fn logging_command(log: &Path, job: usize, device: &str, fail: Option<usize>) -> Command {
    let exit = if fail == Some(job) { "exit 1" } else { "true" };
    let script = format!(
        "echo start {job} {device} >> {log}; sleep 0.05; echo end {job} >> {log}; {exit}",
        log = log.display()
    );
    let mut command = Command::new("sh");
    command.arg("-c").arg(script);
    command
}

#[test]
fn local_processes_start_after_their_dependencies_at_most_k_at_once() {
    let sweep = sweep();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let devices = ["gpu0".to_string(), "gpu1".to_string()];
    let finished = sweep
        .run_local(dir.path(), 3, &devices, |job, device| {
            logging_command(&log, job, device, None)
        })
        .unwrap();
    assert_eq!(finished.len(), sweep.jobs().len());
    let lines = std::fs::read_to_string(&log).unwrap();
    let (mut running, mut most, mut ended) = (0usize, 0usize, HashSet::new());
    for line in lines.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let job: usize = words[1].parse().unwrap();
        if words[0] == "start" {
            for dependency in &sweep.jobs()[job].depends_on {
                assert!(
                    ended.contains(dependency),
                    "job {job} started before {dependency}"
                );
            }
            assert!(devices.contains(&words[2].to_string()), "{line}");
            running += 1;
            most = most.max(running);
        } else {
            ended.insert(job);
            running -= 1;
        }
    }
    assert_eq!(ended.len(), sweep.jobs().len());
    assert!((2..=3).contains(&most), "at most {most} at once");

    // A failing job: nothing that depends on it starts, the error names it.
    let log = dir.path().join("failing");
    let err = sweep
        .run_local(dir.path(), 2, &devices, |job, device| {
            logging_command(&log, job, device, Some(0))
        })
        .unwrap_err();
    assert!(matches!(err, SweepError::JobFailed { job: 0, .. }), "{err}");
    let lines = std::fs::read_to_string(&log).unwrap();
    for (index, job) in sweep.jobs().iter().enumerate() {
        if job.depends_on.contains(&0) {
            assert!(!lines.contains(&format!("start {index} ")), "{index} ran");
        }
    }
    // No process at all is an error, not a hang.
    assert!(
        sweep
            .run_local(dir.path(), 0, &devices, |_, _| Command::new("true"))
            .is_err()
    );
}

#[test]
fn concurrent_jobs_merge_into_the_single_process_report() {
    let sweep = sweep();
    let dir = tempfile::tempdir().unwrap();
    let (cluster, single) = (dir.path().join("cluster"), dir.path().join("single"));
    let (device, task) = (ndarray(), data());
    let partial = sweep.report(&cluster, &device, &task, init).unwrap();
    assert_eq!(partial.missing.len(), sweep.jobs().len());
    assert!(partial.rows.is_empty());
    // Nothing to plot yet: the CSV headers, no SVG (a stale one is
    // removed), no error.
    std::fs::create_dir_all(cluster.join("partial")).unwrap();
    std::fs::write(cluster.join("partial/report.svg"), "<svg/>").unwrap();
    partial.write(&cluster.join("partial"), "tiny").unwrap();
    assert_eq!(
        std::fs::read_to_string(cluster.join("partial/report.csv")).unwrap(),
        partial.report_csv()
    );
    assert!(!cluster.join("partial/report.svg").exists());
    run_locally(&sweep, &cluster);
    assert!(
        sweep
            .status(&cluster)
            .iter()
            .all(|s| *s == JobState::Finished)
    );
    let merged = sweep.report(&cluster, &device, &task, init).unwrap();
    let reference = sweep
        .run_single_process(&single, &device, &task, init, &mut Silent)
        .unwrap();
    assert!(merged.missing.is_empty());
    // 4 experiments x (3 main + 2 control levels), 4 x 3 stability pairs.
    assert_eq!(merged.rows.len(), 4 * 5);
    assert_eq!(merged.stability.len(), 4 * 3);
    assert!(merged.report_csv().contains("random_prune_rewind5"));
    assert_eq!(merged.report_csv(), reference.report_csv());
    assert_eq!(merged.stability_csv(), reference.stability_csv());
    merged.write(&cluster.join("report"), "tiny").unwrap();
    for file in ["report.csv", "report.svg", "stability.csv"] {
        assert!(cluster.join("report").join(file).is_file(), "{file}");
    }
}
