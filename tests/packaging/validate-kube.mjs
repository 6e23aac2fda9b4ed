// SPDX-License-Identifier: MIT
//
// Checks the Kubernetes manifests in packaging/kubernetes/:
//   1. every YAML document of every *.yaml file is a Kubernetes object that
//      validates against the Kubernetes API's OpenAPI schema (the
//      kubernetes-models package's validators), and holds no field the
//      schema does not know (the API server's strict field validation);
//   2. the objects fit together (one namespace; the RoleBinding binds the
//      Role to the ServiceAccount the Deployment runs as; the ConfigMap the
//      pods mount exists and holds packaging/examples/kubernetes.yaml word
//      for word; the Service and the probes reach the port http.listen
//      names; two replicas with leader election on; a locked-down pod);
//   3. the Role grants exactly the (apiGroup, resource, verb) triples of the
//      Kubernetes backend's calls, as kube_rbac_dump prints them: every call
//      granted, nothing else granted;
//   4. the checks themselves reject broken documents and Roles made in
//      memory, so a check that cannot fail is caught.
//
// Usage: node validate-kube.mjs --deps DIR --manifests DIR --rbac FILE --example FILE
//   --deps       a directory whose node_modules holds kubernetes-models and yaml
//   --manifests  packaging/kubernetes
//   --rbac       the JSON kube_rbac_dump printed
//   --example    packaging/examples/kubernetes.yaml
// Prints one line per check and "N passed, N failed"; exits 0 when every
// check passed, 1 otherwise, 2 on a usage error. Node 18 or newer.

import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

function usage(msg) {
  process.stderr.write(`validate-kube: ${msg}\n` +
    "usage: node validate-kube.mjs --deps DIR --manifests DIR --rbac FILE --example FILE\n");
  process.exit(2);
}

const opts = {};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i], v = process.argv[i + 1];
  if (!["--deps", "--manifests", "--rbac", "--example"].includes(k) || v === undefined)
    usage(`bad argument ${k}`);
  opts[k.slice(2)] = v;
}
for (const k of ["deps", "manifests", "rbac", "example"])
  if (!opts[k]) usage(`--${k} is missing`);

const require = createRequire(join(resolve(opts.deps), "package.json"));
const YAML = require("yaml");

let passed = 0, failed = 0;
function check(name, fn) {
  let problems;
  try {
    problems = fn() || [];
  } catch (e) {
    problems = [String(e && e.message ? e.message : e)];
  }
  if (problems.length === 0) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}`);
    for (const p of problems) console.log(`       ${p}`);
  }
  return problems;
}

// ---------------------------------------------------------------- schemas

// The model class of apiVersion/kind, or null.
function modelOf(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion)) return null;
  let mod;
  try {
    mod = require(`kubernetes-models/${apiVersion}`);
  } catch {
    return null;
  }
  const M = mod[kind];
  return typeof M === "function" && M.kind === kind && M.apiVersion === apiVersion ? M : null;
}

// Runs the schema validator of M on a view of obj that records which
// properties the validator reads. The validator reads every property its
// schema declares and enumerates only free-form maps (labels, data, ...),
// so a property of obj it neither read nor reached by enumeration is one
// the schema does not know: a typo, or a field at the wrong level.
function unknownFields(M, obj) {
  const info = new Map();
  const proxies = new Map();
  const wrap = (o, path) => {
    if (o === null || typeof o !== "object") return o;
    if (proxies.has(o)) return proxies.get(o);
    const rec = { o, path, read: new Set(), enumerated: false };
    info.set(o, rec);
    const p = new Proxy(o, {
      get(t, k, r) {
        const v = Reflect.get(t, k, r);
        if (typeof k !== "string") return v;
        rec.read.add(k);
        return Object.prototype.hasOwnProperty.call(t, k) ? wrap(v, `${path}/${k}`) : v;
      },
      has(t, k) {
        if (typeof k === "string") rec.read.add(k);
        return Reflect.has(t, k);
      },
      ownKeys(t) {
        rec.enumerated = true;
        return Reflect.ownKeys(t);
      },
    });
    proxies.set(o, p);
    return p;
  };
  try {
    M.prototype.validate.call(wrap(obj, ""));
  } catch {
    // schema errors are reported by validateDoc
  }
  const out = [];
  for (const rec of info.values()) {
    if (Array.isArray(rec.o) || rec.enumerated) continue;
    for (const k of Object.keys(rec.o))
      if (!rec.read.has(k)) out.push(`${rec.path}/${k}: unknown field`);
  }
  return out;
}

// Problems of one document: not a known kind, schema errors, unknown fields.
function validateDoc(doc) {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    return ["not a mapping"];
  const M = modelOf(doc.apiVersion, doc.kind);
  if (!M) return [`${doc.apiVersion} ${doc.kind}: not a Kubernetes API kind`];
  const problems = [];
  try {
    new M(doc).validate();
  } catch (e) {
    problems.push(String(e.message || e));
  }
  return problems.concat(unknownFields(M, JSON.parse(JSON.stringify(doc))));
}

// ---------------------------------------------------------------- RBAC

// "group|resource|verb" of every grant of a Role, with what makes a rule
// unfit to compare (wildcards, non-resource URLs, names on create).
function roleGrants(role) {
  const grants = new Set(), problems = [];
  for (const [i, rule] of (role.rules || []).entries()) {
    if (rule.nonResourceURLs) problems.push(`rules[${i}]: nonResourceURLs in a Role`);
    for (const list of ["apiGroups", "resources", "verbs"])
      for (const v of rule[list] || [])
        if (v === "*" || v.includes("*")) problems.push(`rules[${i}].${list}: wildcard "${v}"`);
    if (rule.resourceNames && (rule.verbs || []).some((v) => ["create", "list", "watch", "deletecollection"].includes(v)))
      problems.push(`rules[${i}]: resourceNames cannot restrict create, list, watch or deletecollection`);
    for (const g of rule.apiGroups || [])
      for (const r of rule.resources || [])
        for (const v of rule.verbs || []) grants.add(`${g}|${r}|${v}`);
  }
  return { grants, problems };
}

function compareRbac(role, calls) {
  const { grants, problems } = roleGrants(role);
  const want = new Set(calls.map((c) => `${c.apiGroup}|${c.resource}|${c.verb}`));
  const show = (k) => { const [g, r, v] = k.split("|"); return `${v} ${r} (apiGroup "${g}")`; };
  for (const k of want) if (!grants.has(k)) problems.push(`the code calls ${show(k)}; not granted`);
  for (const k of grants) if (!want.has(k)) problems.push(`granted ${show(k)}; the code never calls it`);
  return problems;
}

// ---------------------------------------------------------------- load

let calls;
check(`kube_rbac_dump output ${opts.rbac}`, () => {
  calls = JSON.parse(readFileSync(opts.rbac, "utf8"));
  if (!Array.isArray(calls) || calls.length === 0) return ["not a non-empty array"];
  for (const c of calls)
    if (typeof c.apiGroup !== "string" || !c.resource || !c.verb) return [`bad row ${JSON.stringify(c)}`];
  return [];
});

const docs = []; // {file, index, obj}
const files = readdirSync(opts.manifests).filter((f) => f.endsWith(".yaml")).sort();
check(`manifests found in ${opts.manifests}`, () => (files.length ? [] : ["no *.yaml file"]));
for (const f of files) {
  check(`${f}: YAML`, () => {
    const text = readFileSync(join(opts.manifests, f), "utf8");
    const problems = [];
    const parsed = YAML.parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
    if (!Array.isArray(parsed)) return ["not a YAML stream"];
    parsed.forEach((d, i) => {
      for (const e of d.errors.concat(d.warnings)) problems.push(`document ${i + 1}: ${e.message}`);
      const obj = d.toJS();
      if (obj === null || obj === undefined) problems.push(`document ${i + 1} is empty`);
      else docs.push({ file: f, index: i + 1, obj });
    });
    return problems;
  });
}

// ---------------------------------------------------------------- 1. schemas

for (const d of docs)
  check(`${d.file}#${d.index} ${d.obj.kind} ${d.obj.metadata?.name}: schema`, () => validateDoc(d.obj));

// ---------------------------------------------------------------- 2. fit

const byKind = (kind) => docs.filter((d) => d.obj.kind === kind).map((d) => d.obj);
const one = (kind) => {
  const l = byKind(kind);
  if (l.length !== 1) throw new Error(`expected one ${kind}, found ${l.length}`);
  return l[0];
};

check("one of each: ServiceAccount, Role, RoleBinding, ConfigMap, Deployment, Service, nothing else", () => {
  const want = ["ConfigMap", "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"];
  const got = docs.map((d) => d.obj.kind).sort();
  return JSON.stringify(got) === JSON.stringify(want) ? [] : [`kinds: ${got.join(", ")}`];
});

check("every object in one namespace", () => {
  const ns = new Set(docs.map((d) => d.obj.metadata?.namespace));
  return ns.size === 1 && !ns.has(undefined) ? [] : [`namespaces: ${[...ns].join(", ")}`];
});

let config;
check("ConfigMap: holds packaging/examples/kubernetes.yaml word for word", () => {
  const cm = one("ConfigMap");
  const text = cm.data?.["fleetmedic.yaml"];
  if (typeof text !== "string") return ["no data fleetmedic.yaml"];
  config = YAML.parse(text, { uniqueKeys: true });
  return text === readFileSync(opts.example, "utf8") ? [] : [`differs from ${opts.example}`];
});

check("Deployment: two replicas, leader election on, the ConfigMap mounted at -c", () => {
  const p = [];
  const dep = one("Deployment"), cm = one("ConfigMap"), sa = one("ServiceAccount");
  const pod = dep.spec.template.spec;
  const c = pod.containers?.[0];
  if (dep.spec.replicas !== 2) p.push(`replicas ${dep.spec.replicas}`);
  if (config?.actuators?.kubernetes?.lease?.enabled !== true) p.push("lease not enabled in the config");
  if (config?.actuators?.kubernetes?.in_cluster !== true) p.push("in_cluster not true in the config");
  if (config?.dry_run !== false) p.push("the config does not act (dry_run not false)");
  if (pod.serviceAccountName !== sa.metadata.name) p.push(`serviceAccountName ${pod.serviceAccountName}`);
  if (pod.containers.length !== 1) p.push("not exactly one container");
  const args = c.args || [];
  const conf = args[args.indexOf("-c") + 1];
  const state = args[args.indexOf("--state-dir") + 1];
  if (args[0] !== "run" || args.indexOf("-c") < 0 || args.indexOf("--state-dir") < 0)
    p.push(`args ${JSON.stringify(args)}`);
  const vol = (pod.volumes || []).find((v) => v.configMap?.name === cm.metadata.name);
  const m = vol && (c.volumeMounts || []).find((x) => x.name === vol.name);
  if (!m || `${m.mountPath}/fleetmedic.yaml` !== conf) p.push(`-c ${conf} is not the ConfigMap's file`);
  const sv = (c.volumeMounts || []).find((x) => x.mountPath === state);
  if (!sv || !(pod.volumes || []).some((v) => v.name === sv.name && v.emptyDir)) p.push(`--state-dir ${state} is not an emptyDir`);
  const sel = dep.spec.selector.matchLabels, labels = dep.spec.template.metadata.labels;
  for (const [k, v] of Object.entries(sel)) if (labels[k] !== v) p.push(`selector ${k}=${v} does not match the pod`);
  return p;
});

check("Deployment: probes and Service reach the port of http.listen", () => {
  const p = [];
  const dep = one("Deployment"), svc = one("Service");
  const c = dep.spec.template.spec.containers[0];
  const listen = String(config?.http?.listen || "");
  const mm = /^0\.0\.0\.0:(\d+)$/.exec(listen);
  if (!mm) return [`http.listen ${listen}: not 0.0.0.0:PORT, the kubelet cannot reach it`];
  const port = (c.ports || []).find((x) => x.containerPort === Number(mm[1]));
  if (!port || port.name !== "metrics") return [`no container port "metrics" ${mm[1]}`];
  for (const [probe, path] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
    const g = c[probe]?.httpGet;
    if (!g || g.path !== path || (g.port !== port.name && g.port !== port.containerPort))
      p.push(`${probe} is not GET ${path} on ${port.name}`);
  }
  const sp = (svc.spec.ports || []).find((x) => x.name === "metrics");
  if (!sp || (sp.targetPort !== port.name && sp.targetPort !== port.containerPort)) p.push("Service port metrics does not target it");
  const labels = dep.spec.template.metadata.labels;
  for (const [k, v] of Object.entries(svc.spec.selector || {}))
    if (labels[k] !== v) p.push(`Service selector ${k}=${v} does not match the pod`);
  if (!svc.spec.selector) p.push("Service without selector");
  return p;
});

check("Deployment: locked down (non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp, resources)", () => {
  const p = [];
  const pod = one("Deployment").spec.template.spec;
  for (const c of pod.containers) {
    const sc = c.securityContext || {};
    if (sc.runAsNonRoot !== true && pod.securityContext?.runAsNonRoot !== true) p.push(`${c.name}: runAsNonRoot`);
    if (sc.readOnlyRootFilesystem !== true) p.push(`${c.name}: readOnlyRootFilesystem`);
    if (sc.allowPrivilegeEscalation !== false) p.push(`${c.name}: allowPrivilegeEscalation`);
    if (JSON.stringify(sc.capabilities?.drop) !== '["ALL"]' || sc.capabilities?.add) p.push(`${c.name}: capabilities`);
    const sec = sc.seccompProfile?.type || pod.securityContext?.seccompProfile?.type;
    if (sec !== "RuntimeDefault") p.push(`${c.name}: seccompProfile ${sec}`);
    for (const k of ["requests", "limits"])
      if (!c.resources?.[k]?.cpu || !c.resources?.[k]?.memory) p.push(`${c.name}: resources.${k}`);
  }
  return p;
});

check("RoleBinding: binds the Role to the ServiceAccount", () => {
  const rb = one("RoleBinding"), role = one("Role"), sa = one("ServiceAccount");
  const p = [];
  if (rb.roleRef.kind !== "Role" || rb.roleRef.name !== role.metadata.name) p.push(`roleRef ${JSON.stringify(rb.roleRef)}`);
  const s = rb.subjects || [];
  if (s.length !== 1 || s[0].kind !== "ServiceAccount" || s[0].name !== sa.metadata.name || s[0].namespace !== sa.metadata.namespace)
    p.push(`subjects ${JSON.stringify(s)}`);
  return p;
});

// ---------------------------------------------------------------- 3. RBAC

check("Role: grants exactly the calls of fm_kube_rbac[]", () => compareRbac(one("Role"), calls));

check("Role: the Lease rules named by resourceNames name the configured Lease", () => {
  const name = config?.actuators?.kubernetes?.lease?.name ?? "fleetmedic";
  const p = [];
  for (const r of one("Role").rules)
    if (r.resourceNames && (r.resources || []).includes("leases") && !r.resourceNames.includes(name))
      p.push(`resourceNames ${JSON.stringify(r.resourceNames)} do not name the Lease "${name}"`);
  return p;
});

// ---------------------------------------------------------------- 4. the checks fail

const expectFail = (name, problems) =>
  check(`self-test: ${name} is rejected`, () => (problems.length ? [] : ["accepted"]));

const goodDep = () => JSON.parse(JSON.stringify(one("Deployment")));
check("self-test: an unchanged copy of the Deployment passes", () => validateDoc(goodDep()));
{
  const d = goodDep();
  d.spec.replicas = "two";
  expectFail("a Deployment with replicas: \"two\"", validateDoc(d));
}
{
  const d = goodDep();
  delete d.spec.template.spec.containers[0].name;
  expectFail("a container without a name", validateDoc(d));
}
{
  const d = goodDep();
  d.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
  expectFail("a misspelled field (readOnlyRootFileSystem)", validateDoc(d));
}
{
  const d = goodDep();
  d.spec.template.spec.containers[0].livenessProbe.httpGet.paht = "/healthz";
  expectFail("a misspelled nested field (httpGet.paht)", validateDoc(d));
}
{
  const r = JSON.parse(JSON.stringify(one("Role")));
  delete r.rules[0].verbs;
  expectFail("a Role rule without verbs", validateDoc(r));
}
expectFail("an unknown kind", validateDoc({ apiVersion: "apps/v1", kind: "Deploymnet", metadata: { name: "x" } }));
{
  const r = JSON.parse(JSON.stringify(one("Role")));
  r.rules.push({ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] });
  expectFail("a Role that also grants pods", compareRbac(r, calls));
}
{
  const r = JSON.parse(JSON.stringify(one("Role")));
  r.rules = r.rules.map((x) => ({ ...x, verbs: x.verbs.filter((v) => v !== "update") })).filter((x) => x.verbs.length);
  expectFail("a Role without update on leases", compareRbac(r, calls));
}
{
  const r = JSON.parse(JSON.stringify(one("Role")));
  r.rules[0].verbs = ["*"];
  expectFail("a Role with a wildcard verb", compareRbac(r, calls));
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
