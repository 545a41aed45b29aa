//! The scheduler and the kubelet: pods get a node, then their containers follow the script
//! their image names pick (see the module doc of `fake_kube`), computed as a function of the
//! time since scheduling so the same inputs always give the same states. Status, events and
//! logs are written the way the real kubelet writes them.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::Behavior;
use super::controllers::Ctx;
use super::fields::{self, Part};
use super::object::{self, timestamp};
use super::registry;
use super::resources as r;
use super::state::{Knobs, State};
use super::status::ApiError;

/// What the kubelet remembers about a pod between passes.
#[derive(Debug, Clone)]
pub struct PodMemory {
    /// When the pod was bound to a node, in both clocks (durations, timestamps).
    scheduled: Option<(Instant, SystemTime)>,
    /// Time spent blocked on a missing Secret/ConfigMap; the script resumes after it.
    shift: Duration,
    /// Since when every container is ready (availability counts from here).
    pub ready_since: Option<Instant>,
    deleting_since: Option<Instant>,
    /// Has any container started (configuration is only checked before that)?
    started: bool,
    /// Each container's last state label, to record events on transitions.
    labels: Vec<String>,
    /// The script time of the last pass.
    evaluated: Duration,
    unschedulable_reported: bool,
}

impl PodMemory {
    fn new() -> PodMemory {
        PodMemory {
            scheduled: None,
            shift: Duration::ZERO,
            ready_since: None,
            deleting_since: None,
            started: false,
            labels: Vec::new(),
            evaluated: Duration::ZERO,
            unschedulable_reported: false,
        }
    }
}

/// The behaviour an image gets: the test's rules (newest first), then the built-in script.
pub fn behavior_for(knobs: &Knobs, image: &str) -> Behavior {
    if let Some((_, b)) = knobs
        .behaviors
        .iter()
        .rev()
        .find(|(needle, _)| image.contains(needle.as_str()))
    {
        return b.clone();
    }
    const SCRIPT: [(&str, Behavior); 7] = [
        ("unschedulable", Behavior::Unschedulable),
        ("pull-fail", Behavior::PullFailure),
        ("missing-config", Behavior::MissingConfig),
        ("never-ready", Behavior::NeverReady),
        ("crash", Behavior::CrashLoop),
        ("oom", Behavior::OomKilled),
        ("slow", Behavior::Slow),
    ];
    SCRIPT
        .iter()
        .find(|(needle, _)| image.contains(needle))
        .map_or(Behavior::Ready, |(_, b)| b.clone())
}

/// A container's state at some moment of its script.
#[derive(Debug, Clone)]
enum Run {
    Waiting(&'static str),
    Running {
        since: Duration,
        ready: bool,
    },
    Terminated {
        code: i64,
        reason: &'static str,
        started: Duration,
        finished: Duration,
    },
}

#[derive(Debug, Clone)]
struct View {
    run: Run,
    restarts: u32,
    last: Option<(i64, &'static str, Duration, Duration)>,
    /// Back-off shown in the CrashLoopBackOff message, in object seconds.
    backoff_seconds: u64,
    /// Has the container process started at least once (has it a log)?
    ran: bool,
    /// When the script next changes, as time since scheduling.
    next: Option<Duration>,
    /// Stable name of the state, for event transitions.
    label: String,
}

fn back_off(knobs: &Knobs, n: u32) -> (Duration, u64) {
    let seconds = (10u64 << n.min(5)).min(300);
    (knobs.scaled(seconds as f64), seconds)
}

fn delay_for(knobs: &Knobs, b: &Behavior) -> Duration {
    match b {
        Behavior::ReadyAfter(d) => *d,
        Behavior::Slow => knobs.slow_delay,
        _ => knobs.ready_delay,
    }
}

/// The script: the state of a container with behaviour `b`, `t` after scheduling.
fn script(b: &Behavior, always_restart: bool, t: Duration, knobs: &Knobs) -> View {
    let d = delay_for(knobs, b).max(Duration::from_millis(1));
    let waiting = |reason: &'static str, next: Option<Duration>, label: &str| View {
        run: Run::Waiting(reason),
        restarts: 0,
        last: None,
        backoff_seconds: 0,
        ran: false,
        next,
        label: label.to_string(),
    };
    if t < d && *b != Behavior::MissingConfig {
        return waiting("ContainerCreating", Some(d), "creating");
    }
    match b {
        Behavior::Ready | Behavior::ReadyAfter(_) | Behavior::Slow | Behavior::NeverReady => {
            let ready = *b != Behavior::NeverReady;
            let label = if ready { "running" } else { "running-unready" };
            if always_restart || !ready || t < d * 2 {
                View {
                    run: Run::Running { since: d, ready },
                    restarts: 0,
                    last: None,
                    backoff_seconds: 0,
                    ran: true,
                    next: (!always_restart && ready).then_some(d * 2),
                    label: label.into(),
                }
            } else {
                View {
                    run: Run::Terminated {
                        code: 0,
                        reason: "Completed",
                        started: d,
                        finished: d * 2,
                    },
                    restarts: 0,
                    last: None,
                    backoff_seconds: 0,
                    ran: true,
                    next: None,
                    label: "completed".into(),
                }
            }
        }
        Behavior::CrashLoop | Behavior::OomKilled => {
            let (code, reason) = if *b == Behavior::OomKilled {
                (137, "OOMKilled")
            } else {
                (1, "Error")
            };
            let mut start = d;
            let mut crashes = 0u32;
            let mut last = None;
            loop {
                let end = start + d;
                if t < end {
                    return View {
                        run: Run::Running {
                            since: start,
                            ready: false,
                        },
                        restarts: crashes,
                        last,
                        backoff_seconds: 0,
                        ran: true,
                        next: Some(end),
                        label: format!("running-{crashes}"),
                    };
                }
                last = Some((code, reason, start, end));
                if !always_restart {
                    return View {
                        run: Run::Terminated {
                            code,
                            reason,
                            started: start,
                            finished: end,
                        },
                        restarts: crashes,
                        last: None,
                        backoff_seconds: 0,
                        ran: true,
                        next: None,
                        label: "failed".into(),
                    };
                }
                crashes += 1;
                let (wait, seconds) = back_off(knobs, crashes - 1);
                if t < end + wait {
                    return View {
                        run: Run::Waiting("CrashLoopBackOff"),
                        restarts: crashes,
                        last,
                        backoff_seconds: seconds,
                        ran: true,
                        next: Some(end + wait),
                        label: format!("crashloop-{crashes}"),
                    };
                }
                start = end + wait;
            }
        }
        Behavior::PullFailure => {
            let mut start = d;
            let mut attempt = 0u32;
            loop {
                let failed_until = start + d;
                if t < failed_until {
                    return waiting(
                        "ErrImagePull",
                        Some(failed_until),
                        &format!("errimagepull-{attempt}"),
                    );
                }
                let (wait, _) = back_off(knobs, attempt);
                if t < failed_until + wait {
                    return waiting(
                        "ImagePullBackOff",
                        Some(failed_until + wait),
                        &format!("imagepullbackoff-{attempt}"),
                    );
                }
                start = failed_until + wait;
                attempt += 1;
            }
        }
        Behavior::MissingConfig => {
            if t < d {
                waiting("ContainerCreating", Some(d), "creating")
            } else {
                waiting("CreateContainerConfigError", None, "configerror")
            }
        }
        Behavior::Unschedulable => waiting("ContainerCreating", None, "creating"),
    }
}

/// The first Secret/ConfigMap (or key) a container refers to that does not exist, worded as
/// the kubelet reports it.
fn missing_config(st: &State, ns: &str, container: &Value) -> Option<String> {
    let lookup = |kind: &str, name: &str| {
        let rt = if kind == "Secret" {
            r::SECRETS
        } else {
            r::CONFIGMAPS
        };
        st.store.get(rt, ns, name)
    };
    let lower = |kind: &str| kind.to_ascii_lowercase();
    for env in container["env"].as_array().into_iter().flatten() {
        for (field, kind) in [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")] {
            let reference = &env["valueFrom"][field];
            if reference.is_null() || reference["optional"] == true {
                continue;
            }
            let name = reference["name"].as_str().unwrap_or_default();
            let key = reference["key"].as_str().unwrap_or_default();
            match lookup(kind, name) {
                None => return Some(format!("{} \"{name}\" not found", lower(kind))),
                Some(o) => {
                    let has = !o["data"][key].is_null() || !o["binaryData"][key].is_null();
                    if !has {
                        return Some(format!("couldn't find key {key} in {kind} {ns}/{name}"));
                    }
                }
            }
        }
    }
    for from in container["envFrom"].as_array().into_iter().flatten() {
        for (field, kind) in [("secretRef", "Secret"), ("configMapRef", "ConfigMap")] {
            let reference = &from[field];
            if reference.is_null() || reference["optional"] == true {
                continue;
            }
            let name = reference["name"].as_str().unwrap_or_default();
            if lookup(kind, name).is_none() {
                return Some(format!("{} \"{name}\" not found", lower(kind)));
            }
        }
    }
    None
}

fn containers(pod: &Value) -> Vec<Value> {
    pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// One pass over every pod.
pub fn run(st: &mut State, ctx: &mut Ctx) {
    let pods = st.store.list(r::PODS, None);
    let live: Vec<String> = pods.iter().map(|p| object::uid(p).to_string()).collect();
    st.memory.pods.retain(|uid, _| live.contains(uid));
    for pod in pods {
        sync_pod(st, ctx, pod);
    }
}

fn sync_pod(st: &mut State, ctx: &mut Ctx, pod: Value) {
    let uid = object::uid(&pod).to_string();
    let mut mem = st
        .memory
        .pods
        .get(&uid)
        .cloned()
        .unwrap_or_else(PodMemory::new);
    let (ns, name) = (
        object::namespace(&pod).to_string(),
        object::name(&pod).to_string(),
    );

    if object::is_deleting(&pod) {
        let first_sight = mem.deleting_since.is_none();
        let since = *mem.deleting_since.get_or_insert(ctx.now);
        if first_sight && pod["status"]["phase"] == "Running" {
            for c in containers(&pod) {
                let cname = c["name"].as_str().unwrap_or_default();
                registry::record_event(
                    st,
                    &pod,
                    "Normal",
                    "Killing",
                    &format!("Stopping container {cname}"),
                    "kubelet",
                    Some(&format!("spec.containers{{{cname}}}")),
                );
            }
        }
        let grace = st
            .knobs
            .scaled(object::int(&pod["metadata"]["deletionGracePeriodSeconds"], 30) as f64);
        let gone_at = since + st.knobs.termination_delay.min(grace);
        if ctx.now >= gone_at {
            st.store.remove(r::PODS, &ns, &name);
            st.memory.pods.remove(&uid);
        } else {
            ctx.wake_at(gone_at);
            st.memory.pods.insert(uid, mem);
        }
        return;
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        st.memory.pods.insert(uid, mem);
        return;
    }
    let behaviors: Vec<Behavior> = containers(&pod)
        .iter()
        .map(|c| behavior_for(&st.knobs, c["image"].as_str().unwrap_or_default()))
        .collect();

    if pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty) {
        if behaviors.contains(&Behavior::Unschedulable) {
            let nodes = st.knobs.nodes.len();
            let message = format!(
                "0/{nodes} nodes are available: {nodes} Insufficient cpu. preemption: 0/{nodes} nodes \
                 are available: {nodes} No preemption victims found for incoming pod."
            );
            let mut new = pod.clone();
            new["status"] = json!({
                "phase": "Pending",
                "conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "lastProbeTime": null,
                    "lastTransitionTime": timestamp(SystemTime::now()),
                    "reason": "Unschedulable",
                    "message": message,
                }],
                "qosClass": pod["status"]["qosClass"],
            });
            keep_transition_times(&pod, &mut new);
            write_status(st, &pod, new);
            if !mem.unschedulable_reported {
                mem.unschedulable_reported = true;
                registry::record_event(
                    st,
                    &pod,
                    "Warning",
                    "FailedScheduling",
                    &message,
                    "default-scheduler",
                    None,
                );
            }
            st.memory.pods.insert(uid, mem);
            return;
        }
        let index = st.store.next_id() as usize % st.knobs.nodes.len().max(1);
        let node = st
            .knobs
            .nodes
            .get(index)
            .cloned()
            .unwrap_or_else(|| "fake-node-1".into());
        let mut bound = pod.clone();
        bound["spec"]["nodeName"] = json!(node);
        let bound = st.store.replace(r::PODS, bound);
        registry::record_event(
            st,
            &bound,
            "Normal",
            "Scheduled",
            &format!("Successfully assigned {ns}/{name} to {node}"),
            "default-scheduler",
            None,
        );
        mem.scheduled = Some((ctx.now, SystemTime::now()));
        st.memory.pods.insert(uid.clone(), mem.clone());
        return sync_pod(st, ctx, bound);
    }
    let (sched_at, sched_wall) = *mem.scheduled.get_or_insert((ctx.now, SystemTime::now()));
    let always = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always") == "Always";
    let elapsed = ctx.now.saturating_duration_since(sched_at);
    let specs = containers(&pod);

    // A container that refers to missing configuration cannot be created; its script waits.
    let blocked: Vec<Option<String>> = specs.iter().map(|c| missing_config(st, &ns, c)).collect();
    let first_delay = behaviors
        .iter()
        .map(|b| delay_for(&st.knobs, b))
        .min()
        .unwrap_or_default();
    let blocked_now = !mem.started
        && blocked.iter().any(Option::is_some)
        && elapsed.saturating_sub(mem.shift) >= first_delay;
    if blocked_now {
        mem.shift = elapsed.saturating_sub(first_delay);
    }
    let effective = elapsed.saturating_sub(mem.shift);

    let wall = |d: Duration| timestamp(sched_wall + d + mem.shift);
    let mut statuses = Vec::new();
    let mut all_ready = true;
    let mut unready = Vec::new();
    let mut all_terminated = true;
    let mut any_failed = false;
    let mut any_started = false;
    let mut new_labels = Vec::new();
    for (i, (c, b)) in specs.iter().zip(&behaviors).enumerate() {
        let cname = c["name"].as_str().unwrap_or_default();
        let image = c["image"].as_str().unwrap_or_default();
        let mut view = script(b, always, effective, &st.knobs);
        let mut message = None;
        if let Some(why) = &blocked[i]
            && blocked_now
        {
            view = View {
                run: Run::Waiting("CreateContainerConfigError"),
                restarts: 0,
                last: None,
                backoff_seconds: 0,
                ran: false,
                next: None,
                label: "configerror".into(),
            };
            message = Some(why.clone());
        }
        if let Some(next) = view.next {
            ctx.wake_at(sched_at + mem.shift + next);
        }
        let container_id = format!(
            "containerd://{:08x}{:08x}",
            object::fnv32a(uid.as_bytes()),
            object::fnv32a(format!("{cname}/{}", view.restarts).as_bytes())
        );
        let state = match &view.run {
            Run::Waiting(reason) => {
                let text = match *reason {
                    "ContainerCreating" => None,
                    "CrashLoopBackOff" => Some(format!(
                        "back-off {}s restarting failed container={cname} pod={name}_{ns}({uid})",
                        view.backoff_seconds
                    )),
                    "ErrImagePull" => Some(pull_error(image)),
                    "ImagePullBackOff" => Some(format!("Back-off pulling image \"{image}\"")),
                    "CreateContainerConfigError" => Some(
                        message
                            .clone()
                            .unwrap_or_else(|| format!("secret \"{cname}-config\" not found")),
                    ),
                    _ => None,
                };
                if message.is_none() && *reason == "CreateContainerConfigError" {
                    message = text.clone();
                }
                let mut w = json!({ "reason": reason });
                if let Some(t) = text {
                    w["message"] = json!(t);
                }
                json!({ "waiting": w })
            }
            Run::Running { since, .. } => json!({ "running": { "startedAt": wall(*since) } }),
            Run::Terminated {
                code,
                reason,
                started,
                finished,
            } => json!({ "terminated": {
                "exitCode": code, "reason": reason, "startedAt": wall(*started),
                "finishedAt": wall(*finished), "containerID": container_id,
            }}),
        };
        let ready = matches!(view.run, Run::Running { ready: true, .. });
        let running = matches!(view.run, Run::Running { .. });
        all_ready &= ready;
        if !ready {
            unready.push(cname.to_string());
        }
        match &view.run {
            Run::Terminated { code, .. } => any_failed |= *code != 0,
            _ => all_terminated = false,
        }
        any_started |= view.ran;
        let last_state = match view.last {
            Some((code, reason, started, finished)) => json!({ "terminated": {
                "exitCode": code, "reason": reason, "startedAt": wall(started),
                "finishedAt": wall(finished), "containerID": container_id,
            }}),
            None => json!({}),
        };
        let mut status = json!({
            "name": cname,
            "image": image,
            "imageID": if view.ran { image_id(image) } else { String::new() },
            "ready": ready,
            "restartCount": view.restarts,
            "started": running,
            "state": state,
            "lastState": last_state,
        });
        if view.ran {
            status["containerID"] = json!(container_id);
        }
        statuses.push(status);

        // Events for every state passed through since the last pass, not only the current
        // one: a late pass must not lose the ErrImagePull before an ImagePullBackOff.
        let mut before = mem.labels.get(i).cloned().unwrap_or_default();
        if view.label == "configerror" {
            if before != view.label {
                container_events(st, &pod, cname, image, &before, &view, message.as_deref());
            }
        } else {
            let mut at = mem.evaluated.min(effective);
            loop {
                let passed = script(b, always, at, &st.knobs);
                if passed.label != before {
                    container_events(st, &pod, cname, image, &before, &passed, None);
                    before = passed.label.clone();
                }
                match passed.next {
                    Some(next) if next <= effective && next > at => at = next,
                    _ => break,
                }
            }
        }
        new_labels.push(view.label.clone());
    }
    mem.labels = new_labels;
    mem.started |= any_started;
    mem.evaluated = effective;

    let phase = if all_terminated {
        if any_failed { "Failed" } else { "Succeeded" }
    } else if any_started {
        "Running"
    } else {
        "Pending"
    };
    if all_ready {
        mem.ready_since.get_or_insert(ctx.now);
    } else {
        mem.ready_since = None;
    }
    let now_ts = timestamp(SystemTime::now());
    let condition = |kind: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let mut c = json!({
            "type": kind,
            "status": if ok { "True" } else { "False" },
            "lastProbeTime": null,
            "lastTransitionTime": now_ts,
        });
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        if let Some(m) = message {
            c["message"] = json!(m);
        }
        c
    };
    let (ready_reason, ready_message) = if all_ready {
        (None, None)
    } else if phase == "Succeeded" || phase == "Failed" {
        (Some("PodCompleted"), None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    let host_ip = format!(
        "172.18.0.{}",
        2 + st.knobs.nodes.iter().position(|n| n == node).unwrap_or(0)
    );
    let pod_ip = format!(
        "10.244.{}.{}",
        object::fnv32a(uid.as_bytes()) % 200,
        2 + object::fnv32a(name.as_bytes()) % 250
    );
    let mut new = pod.clone();
    new["status"] = json!({
        "phase": phase,
        "conditions": [
            condition("PodReadyToStartContainers", phase != "Succeeded" && phase != "Failed", None, None),
            condition("Initialized", true, None, None),
            condition("Ready", all_ready, ready_reason, ready_message.clone()),
            condition("ContainersReady", all_ready, ready_reason, ready_message),
            condition("PodScheduled", true, None, None),
        ],
        "hostIP": host_ip,
        "hostIPs": [{ "ip": host_ip }],
        "podIP": pod_ip,
        "podIPs": [{ "ip": pod_ip }],
        "startTime": timestamp(sched_wall),
        "containerStatuses": statuses,
        "qosClass": pod["status"]["qosClass"],
    });
    keep_transition_times(&pod, &mut new);
    write_status(st, &pod, new);
    st.memory.pods.insert(uid, mem);
}

/// Conditions whose status did not change keep their `lastTransitionTime`.
fn keep_transition_times(old: &Value, new: &mut Value) {
    let old_conditions = old["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(conditions) = new["status"]["conditions"].as_array_mut() {
        for c in conditions {
            if let Some(o) = old_conditions
                .iter()
                .find(|o| o["type"] == c["type"] && o["status"] == c["status"])
            {
                c["lastTransitionTime"] = o["lastTransitionTime"].clone();
            }
        }
    }
}

/// Writes a pod's status as the kubelet would (manager `kubelet`, status subresource), when
/// it changed.
fn write_status(st: &mut State, old: &Value, mut new: Value) {
    if new["status"] == old["status"] {
        return;
    }
    fields::record_update(
        Some(old),
        &mut new,
        "kubelet",
        "v1",
        &timestamp(SystemTime::now()),
        Part::Status,
        Some("status"),
    );
    st.store.replace(r::PODS, new);
}

fn pull_error(image: &str) -> String {
    format!(
        "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to \
         resolve reference \"{image}\": {image}: not found"
    )
}

fn image_id(image: &str) -> String {
    match image.split_once('@') {
        Some(_) => image.to_string(),
        None => {
            let repo =
                image.rsplit_once(':').map_or(
                    image,
                    |(repo, tag)| {
                        if tag.contains('/') { image } else { repo }
                    },
                );
            format!(
                "{repo}@sha256:{:064x}",
                u128::from(object::fnv32a(image.as_bytes()))
            )
        }
    }
}

fn container_events(
    st: &mut State,
    pod: &Value,
    cname: &str,
    image: &str,
    before: &str,
    view: &View,
    message: Option<&str>,
) {
    let path = format!("spec.containers{{{cname}}}");
    let ev = |st: &mut State, kind: &str, reason: &str, text: String| {
        registry::record_event(st, pod, kind, reason, &text, "kubelet", Some(&path));
    };
    let label = view.label.as_str();
    if label.starts_with("running") {
        if view.restarts == 0 && !before.starts_with("crashloop") {
            ev(
                st,
                "Normal",
                "Pulling",
                format!("Pulling image \"{image}\""),
            );
            ev(
                st,
                "Normal",
                "Pulled",
                format!(
                    "Successfully pulled image \"{image}\" in 1.2s (1.2s including waiting). Image size: 1234567 bytes."
                ),
            );
        } else {
            ev(
                st,
                "Normal",
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            );
        }
        ev(
            st,
            "Normal",
            "Created",
            format!("Created container: {cname}"),
        );
        ev(
            st,
            "Normal",
            "Started",
            format!("Started container {cname}"),
        );
        if label == "running-unready" {
            ev(
                st,
                "Warning",
                "Unhealthy",
                "Readiness probe failed: HTTP probe failed with statuscode: 503".into(),
            );
        }
    } else if label.starts_with("crashloop") {
        let (ns, name, uid) = (object::namespace(pod), object::name(pod), object::uid(pod));
        ev(
            st,
            "Warning",
            "BackOff",
            format!("Back-off restarting failed container {cname} in pod {name}_{ns}({uid})"),
        );
    } else if label.starts_with("errimagepull") {
        ev(
            st,
            "Normal",
            "Pulling",
            format!("Pulling image \"{image}\""),
        );
        ev(
            st,
            "Warning",
            "Failed",
            format!("Failed to pull image \"{image}\": {}", pull_error(image)),
        );
        ev(st, "Warning", "Failed", "Error: ErrImagePull".into());
    } else if label.starts_with("imagepullbackoff") {
        ev(
            st,
            "Normal",
            "BackOff",
            format!("Back-off pulling image \"{image}\""),
        );
        ev(st, "Warning", "Failed", "Error: ImagePullBackOff".into());
    } else if label == "configerror" {
        let text = message.map_or_else(
            || format!("secret \"{cname}-config\" not found"),
            str::to_string,
        );
        ev(st, "Warning", "Failed", format!("Error: {text}"));
    }
}

/// Options of `GET pods/{name}/log`.
#[derive(Debug, Clone, Default)]
pub struct LogOpts {
    pub container: Option<String>,
    pub previous: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
    pub timestamps: bool,
}

/// The log of one container, and whether it is still running (a follow keeps streaming).
///
/// # Errors
/// 404 for a missing pod, 400 worded like the kubelet's for a container that has none yet.
pub fn log(st: &State, ns: &str, name: &str, opts: &LogOpts) -> Result<(String, bool), ApiError> {
    let pod = st
        .store
        .get(r::PODS, ns, name)
        .ok_or_else(|| ApiError::not_found(&r::TYPES[r::PODS], name))?;
    let specs = containers(pod);
    let container = match &opts.container {
        Some(c) => specs
            .iter()
            .find(|s| s["name"] == c.as_str())
            .ok_or_else(|| {
                ApiError::bad_request(format!("container {c} is not valid for pod {name}"))
            })?,
        None if specs.len() == 1 => &specs[0],
        None => {
            let names: Vec<&str> = specs.iter().filter_map(|c| c["name"].as_str()).collect();
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    let cname = container["name"].as_str().unwrap_or_default();
    let image = container["image"].as_str().unwrap_or_default();
    let status = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == cname))
        .cloned()
        .unwrap_or(Value::Null);
    let restarts = object::int(&status["restartCount"], 0);
    let has_run = !status["containerID"].is_null();
    if opts.previous && restarts == 0 {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{cname}\" in pod \"{name}\" not found"
        )));
    }
    if !has_run {
        let why = match status["state"]["waiting"]["reason"].as_str() {
            Some("ErrImagePull" | "ImagePullBackOff") => {
                "trying and failing to pull image".to_string()
            }
            Some(reason) => reason.to_string(),
            None => "ContainerCreating".to_string(),
        };
        return Err(ApiError::bad_request(format!(
            "container \"{cname}\" in pod \"{name}\" is waiting to start: {why}"
        )));
    }
    let always = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always") == "Always";
    let behavior = behavior_for(&st.knobs, image);
    let text = st
        .knobs
        .logs
        .iter()
        .rev()
        .find(|(needle, _)| image.contains(needle.as_str()))
        .map_or_else(|| default_log(&behavior, image, always), |(_, t)| t.clone());
    let started = status["state"]["running"]["startedAt"]
        .as_str()
        .or_else(|| status["lastState"]["terminated"]["startedAt"].as_str())
        .or_else(|| status["state"]["terminated"]["startedAt"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if let Some(n) = opts.tail_lines {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    if opts.timestamps {
        let stamp = started.replace('Z', ".000000000Z");
        for l in &mut lines {
            *l = format!("{stamp} {l}");
        }
    }
    let mut out: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if let Some(limit) = opts.limit_bytes {
        out.truncate(limit);
    }
    let running = !status["state"]["running"].is_null() && !opts.previous;
    Ok((out, running))
}

fn default_log(b: &Behavior, image: &str, always: bool) -> String {
    match b {
        Behavior::CrashLoop => format!(
            "{image}: starting\nerror: environment variable DATABASE_URL is not set\n\
             panic: cannot start without a database\n"
        ),
        Behavior::OomKilled => format!("{image}: starting\nloading cache into memory\n"),
        Behavior::NeverReady => format!("{image}: starting\nwaiting for database at db:5432\n"),
        _ if !always => format!("{image}: starting\n{image}: done\n"),
        _ => format!("{image}: starting\n{image}: listening on :8080\n"),
    }
}
