#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake Kubernetes API server for fleetmedic's integration tests.

It keeps the semantics the Kubernetes backend depends on (section 2 of the
API facts): HTTPS with bearer tokens (401 Status for a bad one), an RBAC
allow-list (403 Status outside it), a resourceVersion that increases on
every write with 409 Conflict on a stale one, 404 NotFound, 422 Invalid for
bodies that break a schema rule, the PATCH content types (strategic merge
only for built-in types, 415 otherwise), the scale subresource of
Deployments, Lease create/get/update, Event create, and the plain-text 429
with Retry-After of max-in-flight.

An admin interface on a second, plain-HTTP port lets a test seed and read
objects, inject faults and read the request log:
  POST /seed    {"group","plural","namespace","object"}     -> the stored object
  GET  /object?group=&plural=&namespace=&name=               -> the object or 404
  POST /faults  {"faults":[{...}]}  each fault:
        count (1), method, path (substring to match), status (answer this instead),
        retry_after (header seconds), plain (the text/plain 429), delay (seconds
        the answer is held back), touch (after answering, bump the object's
        resourceVersion, as a concurrent writer would)
  GET  /log     every request: t (CLOCK_MONOTONIC seconds), method, path, query,
                ctype, auth, status, body
  POST /rbac    {"rbac":[[group, resource, verb], ...]} replaces the allow-list (null: all)
  POST /clear   empties the log and the faults

Standard library only.
"""

import argparse
import copy
import json
import re
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

BUILTIN_GROUPS = {"", "apps", "coordination.k8s.io"}
MICROTIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MEDIA_JSON = "application/json"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSONPATCH = "application/json-patch+json"
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, headers=None, plain=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.headers, self.plain = details, headers or {}, plain


def qualified(group, plural):
    return plural + "." + group if group else plural


class Store:
    def __init__(self, token_file, rbac):
        self.lock = threading.Lock()
        self.objects = {}
        self.rv = 1000
        self.token_file = token_file
        self.rbac = rbac
        self.faults = []
        self.log = []

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def token(self):
        try:
            with open(self.token_file, encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return None

    def take_fault(self, method, path):
        for f in self.faults:
            if f.get("method") and f["method"] != method:
                continue
            if f.get("path") and f["path"] not in path:
                continue
            f["count"] = f.get("count", 1) - 1
            if f["count"] <= 0:
                self.faults.remove(f)
            return dict(f)
        return None


# ---- patches ----

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "ports": "containerPort",
              "volumes": "name", "volumeMounts": "mountPath"}


def strategic_merge(target, patch, key=None):
    if isinstance(patch, list) and key in MERGE_KEYS and isinstance(target, list):
        mk = MERGE_KEYS[key]
        out = copy.deepcopy(target)
        for item in patch:
            if not isinstance(item, dict) or mk not in item:
                raise ApiError(422, "Invalid", f"{key}: merge key {mk} missing")
            for i, t in enumerate(out):
                if isinstance(t, dict) and t.get(mk) == item[mk]:
                    out[i] = strategic_merge(t, item)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = strategic_merge(out.get(k), v, k)
    return out


def pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(target, ops):
    doc = copy.deepcopy(target)
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "a JSON patch is a list of operations")
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError(400, "BadRequest", "malformed JSON patch operation")
        parts = pointer(op["path"])
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.get(p)
            if parent is None:
                raise ApiError(422, "Invalid", f"path {op['path']} does not exist")
        last = parts[-1] if parts else None
        kind = op["op"]
        if kind == "test":
            cur = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if cur != op.get("value"):
                raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                idx = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(idx, op.get("value"))
                else:
                    parent[idx] = op.get("value")
            else:
                if kind == "replace" and last not in parent:
                    raise ApiError(422, "Invalid", f"replace of missing {op['path']}")
                parent[last] = op.get("value")
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last)
        else:
            raise ApiError(400, "BadRequest", f"unknown op {kind}")
    return doc


# ---- validation: a few schema rules per resource ----

def invalid(kind, name, field, message):
    raise ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {field}: {message}',
                   {"name": name, "kind": kind,
                    "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]})


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def validate(plural, obj, ns):
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not NAME.match(meta["name"]):
        invalid(plural, "", "metadata.name", "a lowercase RFC 1123 subdomain is required")
    name = meta["name"]
    if meta.get("namespace", ns) != ns:
        raise ApiError(400, "BadRequest", "the namespace of the object does not match the namespace on the request")
    spec = obj.get("spec", {})
    if plural != "events" and not isinstance(spec, dict):
        invalid(plural, name, "spec", "must be an object")
    if plural == "deployments":
        if "replicas" in spec and (not is_int(spec["replicas"]) or spec["replicas"] < 0):
            invalid("Deployment.apps", name, "spec.replicas", "must be greater than or equal to 0")
        for i, c in enumerate(spec.get("template", {}).get("spec", {}).get("containers", [])):
            if not isinstance(c.get("name"), str) or not isinstance(c.get("image"), str) or not c["image"]:
                invalid("Deployment.apps", name, f"spec.template.spec.containers[{i}]", "name and image required")
    elif plural == "scale":
        if "replicas" in spec and (not is_int(spec["replicas"]) or spec["replicas"] < 0):
            invalid("Scale.autoscaling", name, "spec.replicas", "must be greater than or equal to 0")
    elif plural == "leases":
        if "holderIdentity" in spec and not isinstance(spec["holderIdentity"], str):
            invalid("Lease.coordination.k8s.io", name, "spec.holderIdentity", "must be a string")
        if "leaseDurationSeconds" in spec and (not is_int(spec["leaseDurationSeconds"]) or spec["leaseDurationSeconds"] <= 0):
            invalid("Lease.coordination.k8s.io", name, "spec.leaseDurationSeconds", "must be greater than 0")
        if "leaseTransitions" in spec and (not is_int(spec["leaseTransitions"]) or spec["leaseTransitions"] < 0):
            invalid("Lease.coordination.k8s.io", name, "spec.leaseTransitions", "must be greater than or equal to 0")
        for f in ("acquireTime", "renewTime"):
            if f in spec and not (isinstance(spec[f], str) and MICROTIME.match(spec[f])):
                invalid("Lease.coordination.k8s.io", name, "spec." + f, "must be a MicroTime")
    elif plural == "events":
        if obj.get("type") not in ("Normal", "Warning"):
            invalid("Event", name, "type", "must be Normal or Warning")
        if not obj.get("reason") or len(obj["reason"]) > 128:
            invalid("Event", name, "reason", "1 to 128 characters")
        inv = obj.get("involvedObject", {})
        if inv.get("namespace") != meta.get("namespace", ns):
            invalid("Event", name, "involvedObject.namespace", "does not match event.namespace")
    elif plural == "virtualservices":
        for i, h in enumerate(spec.get("http", [])):
            for j, r in enumerate(h.get("route", [])):
                if not isinstance(r.get("destination", {}).get("host"), str):
                    invalid("VirtualService.networking.istio.io", name, f"spec.http[{i}].route[{j}].destination.host", "required")
                if "weight" in r and (not is_int(r["weight"]) or r["weight"] < 0):
                    invalid("VirtualService.networking.istio.io", name, f"spec.http[{i}].route[{j}].weight", "must be >= 0")
    elif plural == "httproutes":
        for i, rule in enumerate(spec.get("rules", [])):
            for j, b in enumerate(rule.get("backendRefs", [])):
                if "weight" in b and (not is_int(b["weight"]) or not 0 <= b["weight"] <= 1000000):
                    invalid("HTTPRoute.gateway.networking.k8s.io", name, f"spec.rules[{i}].backendRefs[{j}].weight", "0 to 1000000")
    elif plural == "inferenceservices":
        uri = spec.get("predictor", {}).get("model", {}).get("storageUri")
        if uri is not None and (not isinstance(uri, str) or not uri):
            invalid("InferenceService.serving.kserve.io", name, "spec.predictor.model.storageUri", "must be a string")


def omit_zero(d):
    return {k: v for k, v in d.items() if v != 0}


def settle(plural, obj, old):
    """Generation and (for Deployments) a rollout that completes at once."""
    meta = obj["metadata"]
    if old is None:
        meta["generation"] = 1
    elif obj.get("spec") != old.get("spec"):
        meta["generation"] = old["metadata"].get("generation", 1) + 1
    else:
        meta["generation"] = old["metadata"].get("generation", 1)
    if plural == "deployments":
        n = obj.get("spec", {}).get("replicas", 1)
        st = omit_zero({"replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n})
        st["observedGeneration"] = meta["generation"]
        st["conditions"] = [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]
        obj["status"] = st


class Api:
    def __init__(self, store):
        self.s = store

    def key(self, r):
        return (r["group"], r["plural"], r["ns"], r["name"])

    def get_obj(self, r):
        obj = self.s.objects.get(self.key(r))
        if obj is None:
            raise ApiError(404, "NotFound", f'{qualified(r["group"], r["plural"])} "{r["name"]}" not found',
                           {"name": r["name"], "group": r["group"], "kind": r["plural"]} if r["group"]
                           else {"name": r["name"], "kind": r["plural"]})
        return obj

    def conflict(self, r):
        raise ApiError(409, "Conflict",
                       f'Operation cannot be fulfilled on {qualified(r["group"], r["plural"])} "{r["name"]}": '
                       "the object has been modified; please apply your changes to the latest version and try again",
                       {"name": r["name"], "group": r["group"], "kind": r["plural"]})

    def store(self, r, obj, old):
        obj.setdefault("metadata", {})
        meta = obj["metadata"]
        meta["name"] = r["name"]
        meta["namespace"] = r["ns"]
        meta["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
        meta["creationTimestamp"] = old["metadata"]["creationTimestamp"] if old else \
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        settle(r["plural"], obj, old)
        meta["resourceVersion"] = self.s.next_rv()
        self.s.objects[self.key(r)] = obj
        return obj

    def scale_of(self, dep):
        m = dep["metadata"]
        n = dep.get("spec", {}).get("replicas", 1)
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                             "resourceVersion": m["resourceVersion"],
                             "creationTimestamp": m["creationTimestamp"]},
                "spec": omit_zero({"replicas": n}),
                "status": {"replicas": dep.get("status", {}).get("replicas", 0),
                           "selector": "app=" + m["name"]}}

    def patched(self, r, current, body, ctype):
        if ctype == MERGE:
            patch = json.loads(body)
            out = merge_patch(current, patch)
        elif ctype == STRATEGIC:
            if r["group"] not in BUILTIN_GROUPS:
                raise ApiError(415, "UnsupportedMediaType",
                               "the body of the request was in an unknown format - accepted media types include: "
                               "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
            out = strategic_merge(current, json.loads(body))
        elif ctype == JSONPATCH:
            out = json_patch(current, json.loads(body))
        else:
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media types include: "
                           + ("application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
                              if r["group"] in BUILTIN_GROUPS else
                              "application/json-patch+json, application/merge-patch+json"))
        if not isinstance(out, dict):
            raise ApiError(422, "Invalid", "the patch made the object something other than an object")
        rv = out.get("metadata", {}).get("resourceVersion")
        if rv is not None and rv != current["metadata"]["resourceVersion"]:
            self.conflict(r)
        return out

    def handle(self, method, r, body, ctype):
        if r["name"] is None:
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed", "only create on a collection")
            obj = json.loads(body)
            if not isinstance(obj, dict):
                raise ApiError(400, "BadRequest", "the body is not an object")
            validate(r["plural"], obj, r["ns"])
            r = dict(r, name=obj["metadata"]["name"])
            if self.key(r) in self.s.objects:
                raise ApiError(409, "AlreadyExists", f'{qualified(r["group"], r["plural"])} "{r["name"]}" already exists',
                               {"name": r["name"], "group": r["group"], "kind": r["plural"]})
            return 201, self.store(r, obj, None)
        current = self.get_obj(r)
        if r["sub"] == "scale":
            if r["plural"] != "deployments":
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            scale = self.scale_of(current)
            if method == "GET":
                return 200, scale
            if method == "PATCH":
                new = self.patched(r, scale, body, ctype)
            elif method == "PUT":
                new = json.loads(body)
                if not isinstance(new, dict):
                    raise ApiError(400, "BadRequest", "the body is not an object")
                rv = new.get("metadata", {}).get("resourceVersion")
                if rv is not None and rv != scale["metadata"]["resourceVersion"]:
                    self.conflict(r)
            else:
                raise ApiError(405, "MethodNotAllowed", "method not allowed")
            new.setdefault("metadata", {})["name"] = r["name"]
            validate("scale", new, r["ns"])
            dep = copy.deepcopy(current)
            dep.setdefault("spec", {})["replicas"] = new.get("spec", {}).get("replicas", 0)
            return 200, self.scale_of(self.store(r, dep, current))
        if r["sub"]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method == "GET":
            return 200, current
        if method == "PUT":
            new = json.loads(body)
            if not isinstance(new, dict):
                raise ApiError(400, "BadRequest", "the body is not an object")
            rv = new.get("metadata", {}).get("resourceVersion")
            if rv is not None and rv != current["metadata"]["resourceVersion"]:
                self.conflict(r)
        elif method == "PATCH":
            new = self.patched(r, current, body, ctype)
        else:
            raise ApiError(405, "MethodNotAllowed", "method not allowed")
        if new.get("metadata", {}).get("name", r["name"]) != r["name"]:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        new.setdefault("metadata", {})["name"] = r["name"]
        validate(r["plural"], new, r["ns"])
        return 200, self.store(r, new, current)


def route(path):
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    if len(rest) < 3 or rest[0] != "namespaces" or len(rest) > 5:
        return None
    return {"group": group, "ns": rest[1], "plural": rest[2],
            "name": rest[3] if len(rest) > 3 else None, "sub": rest[4] if len(rest) > 4 else None}


def status_body(e):
    b = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": e.message, "reason": e.reason, "code": e.code}
    if e.details:
        b["details"] = e.details
    return b


def make_api_handler(store):
    api = Api(store)

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("fake_kube: " + (fmt % args) + "\n")

        def setup(self):
            self.request.settimeout(30)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                pass
            super().setup()

        def answer(self, code, obj=None, headers=None, text=None):
            data = text.encode() if text is not None else json.dumps(obj).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8" if text is not None else MEDIA_JSON)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass

        def do(self):
            t = time.monotonic()
            u = urlsplit(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            auth = self.headers.get("Authorization") or ""
            entry = {"t": t, "method": self.command, "path": u.path, "query": u.query, "ctype": ctype,
                     "body": body, "auth": False, "status": 0}
            # The request is judged and logged when it arrives; a delay only holds the answer
            # back, so a client that gave up leaves no late surprise in the log.
            with store.lock:
                fault = store.take_fault(self.command, u.path)
                code, obj, headers, text = self.process(u.path, body, ctype, auth, fault, entry)
                entry["status"] = code
                store.log.append(entry)
            if fault and fault.get("delay"):
                time.sleep(fault["delay"])
            self.answer(code, obj, headers, text)

        def process(self, path, body, ctype, auth, fault, entry):
            token = store.token()
            if not token or auth != "Bearer " + token:
                return 401, status_body(ApiError(401, "Unauthorized", "Unauthorized")), None, None
            entry["auth"] = True
            r = route(path)
            if r is None:
                return 404, status_body(ApiError(404, "NotFound", "the server could not find the requested resource")), None, None
            verb = VERBS[self.command]
            if self.command == "GET" and r["name"] is None:
                verb = "list"
            resource = r["plural"] + ("/" + r["sub"] if r["sub"] else "")
            if store.rbac is not None and [r["group"], resource, verb] not in store.rbac:
                what = qualified(r["group"], r["plural"])
                named = f' "{r["name"]}"' if r["name"] else ""
                msg = (f'{what}{named} is forbidden: User "system:serviceaccount:{r["ns"]}:fleetmedic" cannot {verb} '
                       f'resource "{resource}" in API group "{r["group"]}" in the namespace "{r["ns"]}"')
                return 403, status_body(ApiError(403, "Forbidden", msg, {"name": r["name"] or "", "group": r["group"], "kind": r["plural"]})), None, None
            if fault and fault.get("status"):
                code = fault["status"]
                hdrs = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else None
                if code == 429 and fault.get("plain", True):
                    return 429, None, hdrs, "Too many requests, please try again later.\n"
                reasons = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                           504: "Timeout", 422: "Invalid", 404: "NotFound", 403: "Forbidden"}
                return code, status_body(ApiError(code, reasons.get(code, "Unknown"), fault.get("message", "injected"))), hdrs, None
            if self.command in ("PUT", "POST", "PATCH"):
                if self.command != "PATCH" and ctype != MEDIA_JSON:
                    return 415, status_body(ApiError(415, "UnsupportedMediaType", f"unsupported media type {ctype!r}")), None, None
            try:
                code, obj = api.handle(self.command, r, body, ctype)
            except ApiError as e:
                return e.code, status_body(e), e.headers, None
            except (ValueError, json.JSONDecodeError) as e:
                return 400, status_body(ApiError(400, "BadRequest", f"malformed body: {e}")), None, None
            except (KeyError, IndexError, TypeError, AttributeError) as e:
                return 422, status_body(ApiError(422, "Invalid", f"invalid body: {e!r}")), None, None
            if fault and fault.get("touch"):
                key = (r["group"], r["plural"], r["ns"], r["name"])
                if key in store.objects:
                    store.objects[key]["metadata"]["resourceVersion"] = store.next_rv()
            return code, obj, None, None

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do

    return H


def make_admin_handler(store):
    api = Api(store)

    class A(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def reply(self, code, obj):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", MEDIA_JSON)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            u = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
            with store.lock:
                if u.path == "/log":
                    return self.reply(200, store.log)
                if u.path == "/object":
                    obj = store.objects.get((q.get("group", ""), q.get("plural"), q.get("namespace"), q.get("name")))
                    return self.reply(200 if obj else 404, obj or {})
                if u.path == "/ready":
                    return self.reply(200, {})
            self.reply(404, {})

        def do_POST(self):
            u = urlsplit(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            with store.lock:
                if u.path == "/seed":
                    obj = copy.deepcopy(body["object"])
                    r = {"group": body.get("group", ""), "plural": body["plural"], "ns": body["namespace"],
                         "name": obj["metadata"]["name"], "sub": None}
                    old = store.objects.get(api.key(r))
                    return self.reply(200, api.store(r, obj, old))
                if u.path == "/faults":
                    store.faults.extend(body.get("faults", []))
                    return self.reply(200, {})
                if u.path == "/rbac":
                    store.rbac = [list(x) for x in body["rbac"]] if body.get("rbac") is not None else None
                    return self.reply(200, {})
                if u.path == "/clear":
                    store.log.clear()
                    store.faults.clear()
                    return self.reply(200, {})
            self.reply(404, {})

    return A


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--admin-port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token-file", required=True, help="the accepted bearer token, read on every request")
    ap.add_argument("--rbac", help='JSON list of [group, resource, verb] allowed; absent: all allowed')
    a = ap.parse_args()

    rbac = None
    if a.rbac:
        rbac = [list(x) if isinstance(x, list) else [x["group"], x["resource"], x["verb"]] for x in json.loads(a.rbac)]
    store = Store(a.token_file, rbac)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    api_srv = ThreadingHTTPServer(("127.0.0.1", a.port), make_api_handler(store))
    api_srv.daemon_threads = True
    api_srv.socket = ctx.wrap_socket(api_srv.socket, server_side=True, do_handshake_on_connect=False)
    admin = ThreadingHTTPServer(("127.0.0.1", a.admin_port), make_admin_handler(store))
    admin.daemon_threads = True
    threading.Thread(target=api_srv.serve_forever, daemon=True).start()
    sys.stderr.write(f"fake_kube: API on https://127.0.0.1:{a.port}, admin on {a.admin_port}\n")
    try:
        admin.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
