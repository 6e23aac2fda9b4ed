#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A fake MLflow Model Registry server (REST API 2.0) for the integration tests.

    fake_mlflow.py PORT

Listens on 127.0.0.1:PORT. Follows shared/reference/api-facts.md section 3:
paths under /api/2.0/mlflow/, GET parameters in the query string, POST and
DELETE bodies in JSON (POST must say Content-Type: application/json),
snake_case fields, empty fields omitted, int64 as JSON numbers, errors as
{"error_code","message"} with the mapped HTTP status and MLflow's messages.

Endpoints: registered-models/get, registered-models/search,
model-versions/get, model-versions/search, registered-models/alias (GET,
POST, DELETE), model-versions/set-tag, registered-models/set-tag,
model-versions/transition-stage.

Test controls under /_admin/ (never logged, never faulted, no auth):
    POST /_admin/seed    {"models":[{"name","versions":[{"version":"1","status"?,"tags"?}],
                                     "aliases"?:{"alias":"version"},"tags"?:{}}]}
                         replaces the whole registry
    POST /_admin/faults  {"count":N,"status":429,"retry_after":"1","delay_ms":0,
                          "error_code":"REQUEST_LIMIT_EXCEEDED"}: the next N API
                         requests get that answer (status 0: only the delay)
    POST /_admin/auth    {"token":"..."} or {"username":"...","password":"..."}
                         or {}: what the API requires from now on
    GET  /_admin/state   the registry as the API would show it, plus "aliases"
    GET  /_admin/log     every API request: method, path, raw_path, query, params, body,
                         authorization, content_type, status
Standard library only.
"""

import base64
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/api/2.0/mlflow/"
SEARCH_MV_MAX = 200000
SEARCH_RM_MAX = 1000

ERROR_STATUS = {
    "INVALID_PARAMETER_VALUE": 400, "BAD_REQUEST": 400, "RESOURCE_ALREADY_EXISTS": 400,
    "UNAUTHENTICATED": 401, "CUSTOMER_UNAUTHORIZED": 401, "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404, "NOT_FOUND": 404, "ENDPOINT_NOT_FOUND": 404,
    "ABORTED": 409, "ALREADY_EXISTS": 409, "RESOURCE_CONFLICT": 409,
    "REQUEST_LIMIT_EXCEEDED": 429, "RESOURCE_EXHAUSTED": 429,
    "INTERNAL_ERROR": 500, "INVALID_STATE": 500, "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501, "TEMPORARILY_UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}
STATUS_CODE = {429: "REQUEST_LIMIT_EXCEEDED", 500: "INTERNAL_ERROR", 502: "INTERNAL_ERROR",
               503: "TEMPORARILY_UNAVAILABLE", 504: "DEADLINE_EXCEEDED", 408: "DEADLINE_EXCEEDED"}
STAGES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}


class MlflowError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def missing(name):
    return MlflowError("INVALID_PARAMETER_VALUE",
                       f"Missing value for required parameter '{name}'. See the API docs for more "
                       "information about request parameters.")


def now_ms():
    return int(time.time() * 1000)


class Registry:
    def __init__(self):
        self.lock = threading.Lock()
        self.models = {}
        self.faults = []
        self.auth = {}
        self.log = []

    # ---- shapes ----
    def mv_json(self, m, v):
        out = {"name": m["name"], "version": v["version"],
               "creation_timestamp": v["creation_timestamp"],
               "last_updated_timestamp": v["last_updated_timestamp"],
               "current_stage": v["current_stage"], "source": v["source"],
               "status": v["status"]}
        for k in ("description", "run_id", "user_id", "status_message", "run_link"):
            if v.get(k):
                out[k] = v[k]
        if v["tags"]:
            out["tags"] = [{"key": k, "value": val} for k, val in v["tags"].items()]
        aliases = [a for a, ver in m["aliases"].items() if ver == v["version"]]
        if aliases:
            out["aliases"] = aliases
        return out

    def rm_json(self, m):
        out = {"name": m["name"], "creation_timestamp": m["creation_timestamp"],
               "last_updated_timestamp": m["last_updated_timestamp"]}
        if m.get("description"):
            out["description"] = m["description"]
        latest = {}
        for v in m["versions"].values():
            if v["status"] != "READY":
                continue
            cur = latest.get(v["current_stage"])
            if cur is None or int(v["version"]) > int(cur["version"]):
                latest[v["current_stage"]] = v
        if latest:
            out["latest_versions"] = [self.mv_json(m, v) for v in latest.values()]
        if m["tags"]:
            out["tags"] = [{"key": k, "value": val} for k, val in m["tags"].items()]
        if m["aliases"]:
            out["aliases"] = [{"alias": a, "version": v} for a, v in m["aliases"].items()]
        return out

    # ---- lookups ----
    def model(self, name):
        if not name:
            raise missing("name")
        m = self.models.get(name)
        if m is None:
            raise MlflowError("RESOURCE_DOES_NOT_EXIST",
                              f"Registered Model with name={name} not found")
        return m

    def version(self, m, version):
        if version is None or version == "":
            raise missing("version")
        try:
            n = int(version)
        except ValueError:
            raise MlflowError("INVALID_PARAMETER_VALUE",
                              f"Parameter 'version' must be an integer, got '{version}'.")
        v = m["versions"].get(str(n))
        if v is None:
            raise MlflowError("RESOURCE_DOES_NOT_EXIST",
                              f"Model Version (name={m['name']}, version={version}) not found")
        return v

    # ---- seed ----
    def seed(self, data):
        self.models = {}
        t = now_ms()
        for spec in data.get("models", []):
            m = {"name": spec["name"], "creation_timestamp": t, "last_updated_timestamp": t,
                 "description": spec.get("description", ""), "tags": dict(spec.get("tags", {})),
                 "aliases": dict(spec.get("aliases", {})), "versions": {}}
            for i, vs in enumerate(spec.get("versions", [])):
                ver = str(vs["version"])
                m["versions"][ver] = {
                    "version": ver, "creation_timestamp": t + i, "last_updated_timestamp": t + i,
                    "current_stage": vs.get("current_stage", "None"),
                    "source": vs.get("source", f"models:/{spec['name']}/{ver}"),
                    "run_id": vs.get("run_id", ""), "status": vs.get("status", "READY"),
                    "tags": dict(vs.get("tags", {})), "description": ""}
            self.models[m["name"]] = m


def check_alias(alias):
    if not alias:
        raise missing("alias")
    if (not re.fullmatch(r"[\w\-]{1,255}", alias) or alias.lower() == "latest"
            or re.fullmatch(r"[vV]\d+", alias)):
        raise MlflowError("INVALID_PARAMETER_VALUE",
                          f"Invalid alias name: '{alias}'. Aliases may only contain alphanumerics, "
                          "underscores, and dashes, and must not be 'latest' or of the form v<N>.")


def check_tag(key, value):
    if not key:
        raise missing("key")
    if value is None:
        raise missing("value")
    if len(key) > 250:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Tag key exceeds the maximum length of 250")
    if len(value) > 5000:
        raise MlflowError("INVALID_PARAMETER_VALUE",
                          "Tag value exceeds the maximum length of 5000")


# ---- search filters (mlflow/utils/search_utils.py, the subset tests need) ----

CLAUSE = re.compile(
    r"^\s*(name|run_id|source_path|version_number|tags\.(?:`[^`]+`|[\w.]+))\s*"
    r"(=|!=|>=|<=|>|<|LIKE|ILIKE|IN)\s*(.+?)\s*$", re.IGNORECASE | re.DOTALL)


def split_and(text):
    parts, cur, quoted = [], "", False
    i = 0
    while i < len(text):
        c = text[i]
        if c == "'":
            quoted = not quoted
        if not quoted and text[i:i + 5].upper() == " AND ":
            parts.append(cur)
            cur = ""
            i += 5
            continue
        cur += c
        i += 1
    parts.append(cur)
    return parts


def parse_string(tok):
    if len(tok) >= 2 and tok[0] == "'" and tok[-1] == "'" and "'" not in tok[1:-1]:
        return tok[1:-1]
    raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter value {tok!r}: expected a "
                      "single-quoted string")


def like(pattern, s, fold):
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, s, re.IGNORECASE | re.DOTALL if fold else re.DOTALL) is not None


def parse_filter(text):
    clauses = []
    if not text or not text.strip():
        return clauses
    for part in split_and(text):
        mt = CLAUSE.match(part)
        if not mt:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}'")
        attr, op, val = mt.group(1), mt.group(2).upper(), mt.group(3)
        if attr.lower() == "version_number":
            if op not in ("=", "!=", ">", ">=", "<", "<="):
                raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid comparator {op}")
            try:
                val = int(val)
            except ValueError:
                raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid version_number {val}")
        elif op == "IN":
            inner = val.strip()
            if not (inner.startswith("(") and inner.endswith(")")):
                raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid IN list {val}")
            val = [parse_string(x.strip()) for x in inner[1:-1].split(",")]
        elif op in ("=", "!=", "LIKE", "ILIKE"):
            val = parse_string(val)
        else:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid comparator {op} for {attr}")
        if attr.lower().startswith("tags."):
            attr = "tags." + attr[5:].strip("`")
        else:
            attr = attr.lower()
        clauses.append((attr, op, val))
    return clauses


def match(clauses, m, v):
    for attr, op, want in clauses:
        if attr == "version_number":
            have = int(v["version"])
            ok = {"=": have == want, "!=": have != want, ">": have > want, ">=": have >= want,
                  "<": have < want, "<=": have <= want}[op]
        else:
            if attr == "name":
                have = m["name"]
            elif attr == "run_id":
                have = v.get("run_id", "")
            elif attr == "source_path":
                have = v.get("source", "")
            else:
                have = v["tags"].get(attr[5:])
                if have is None:
                    return False
            if op == "=":
                ok = have == want
            elif op == "!=":
                ok = have != want
            elif op == "IN":
                ok = have in want
            else:
                ok = like(want, have, op == "ILIKE")
        if not ok:
            return False
    return True


def page(items, params, default_max, limit):
    try:
        max_results = int(params.get("max_results", default_max))
    except ValueError:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Invalid value for max_results")
    if max_results < 1 or max_results > limit:
        raise MlflowError("INVALID_PARAMETER_VALUE",
                          f"Invalid value {max_results} for parameter 'max_results' supplied. "
                          f"It must be at most {limit}")
    offset = 0
    token = params.get("page_token")
    if token:
        try:
            offset = int(json.loads(base64.b64decode(token, validate=True))["offset"])
            if offset < 0:
                raise ValueError
        except Exception:
            raise MlflowError("INVALID_PARAMETER_VALUE", "Invalid page token, could not base64-"
                              "decode")
    chunk = items[offset:offset + max_results]
    nxt = None
    if offset + max_results < len(items):
        nxt = base64.b64encode(json.dumps({"offset": offset + max_results}).encode()).decode()
    return chunk, nxt


REG = Registry()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj=None, text=None, headers=()):
        if text is not None:
            data = text.encode()
            ctype = "text/plain; charset=utf-8"
        else:
            data = json.dumps(obj if obj is not None else {}).encode()
            ctype = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        return status

    def error(self, code, message, headers=()):
        return self.reply(ERROR_STATUS.get(code, 500), {"error_code": code, "message": message},
                          headers=headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        raw = self.read_body()
        if url.path.startswith("/_admin/"):
            self.admin(url.path[len("/_admin/"):], raw)
            return
        entry = {"method": self.command, "path": url.path, "raw_path": self.path,
                 "query": url.query,
                 "params": dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
                 "body": raw.decode("utf-8", "replace"),
                 "authorization": self.headers.get("Authorization"),
                 "content_type": self.headers.get("Content-Type")}
        with REG.lock:
            REG.log.append(entry)
            fault = None
            if REG.faults and REG.faults[0]["count"] > 0:
                fault = dict(REG.faults[0])
                REG.faults[0]["count"] -= 1
                if REG.faults[0]["count"] <= 0:
                    REG.faults.pop(0)
        if fault:
            if fault.get("delay_ms"):
                time.sleep(fault["delay_ms"] / 1000.0)
            st = fault.get("status", 0)
            if st:
                code = fault.get("error_code") or STATUS_CODE.get(st, "INTERNAL_ERROR")
                hdrs = []
                if fault.get("retry_after") is not None:
                    hdrs.append(("Retry-After", str(fault["retry_after"])))
                entry["status"] = self.reply(st, {"error_code": code,
                                                  "message": "injected fault"}, headers=hdrs)
                return
        entry["status"] = self.api(url, raw)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def authorized(self):
        auth = REG.auth
        got = self.headers.get("Authorization") or ""
        if auth.get("username") is not None:
            want = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
            return got == "Basic " + want
        if auth.get("token") is not None:
            return got == "Bearer " + auth["token"]
        return True

    def api(self, url, raw):
        if not self.authorized():
            return self.reply(401, text="You are not authenticated. Please see "
                              "https://www.mlflow.org/docs/latest/auth/index.html#authenticating-"
                              "to-mlflow on how to authenticate.",
                              headers=[("WWW-Authenticate", 'Basic realm="mlflow"')])
        if not url.path.startswith(API):
            return self.error("ENDPOINT_NOT_FOUND", f"No API endpoint for {url.path}")
        endpoint = url.path[len(API):]
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        body = {}
        if self.command in ("POST", "PUT"):
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if not ctype:
                return self.error("INVALID_PARAMETER_VALUE",
                                  "Bad Request. Content-Type header is missing.")
            if ctype != "application/json":
                return self.error("INVALID_PARAMETER_VALUE",
                                  f"Bad Request. Content-Type must be one of "
                                  f"['application/json'], got '{ctype}'.")
        if self.command in ("POST", "PATCH", "DELETE", "PUT") and raw:
            try:
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise ValueError
            except ValueError:
                return self.error("INVALID_PARAMETER_VALUE", "Malformed JSON request body")
        route = ROUTES.get((self.command, endpoint))
        if route is None:
            return self.error("ENDPOINT_NOT_FOUND",
                              f"No API endpoint for {self.command} {url.path}")
        try:
            with REG.lock:
                out = route(params if self.command == "GET" else body)
        except MlflowError as e:
            return self.error(e.code, e.message)
        return self.reply(200, out)

    def admin(self, what, raw):
        data = json.loads(raw) if raw else {}
        with REG.lock:
            if what == "seed" and self.command == "POST":
                REG.seed(data)
                out = {}
            elif what == "faults" and self.command == "POST":
                REG.faults.append(dict(data))
                out = {}
            elif what == "auth" and self.command == "POST":
                REG.auth = dict(data)
                out = {}
            elif what == "state":
                out = {"models": [dict(REG.rm_json(m), versions=[REG.mv_json(m, v) for v in
                                                                  m["versions"].values()])
                                  for m in REG.models.values()]}
            elif what == "log":
                out = {"requests": REG.log}
            else:
                self.reply(404, {"error": "unknown admin call"})
                return
        self.reply(200, out)


# ---- API routes (the caller holds REG.lock) ----

def rm_get(p):
    return {"registered_model": REG.rm_json(REG.model(p.get("name")))}


def rm_search(p):
    clauses = parse_filter(p.get("filter", ""))
    for attr, _, _ in clauses:
        if attr != "name" and not attr.startswith("tags."):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid attribute key '{attr}'")
    items = [m for m in sorted(REG.models.values(), key=lambda m: m["name"])
             if all(match([c], m, {"version": "0", "tags": m["tags"]}) for c in clauses)]
    chunk, nxt = page(items, p, 100, SEARCH_RM_MAX)
    out = {}
    if chunk:
        out["registered_models"] = [REG.rm_json(m) for m in chunk]
    if nxt:
        out["next_page_token"] = nxt
    return out


def mv_get(p):
    m = REG.model(p.get("name"))
    return {"model_version": REG.mv_json(m, REG.version(m, p.get("version")))}


def mv_search(p):
    clauses = parse_filter(p.get("filter", ""))
    items = []
    for m in REG.models.values():
        for v in m["versions"].values():
            if match(clauses, m, v):
                items.append((m, v))
    items.sort(key=lambda mv: (-mv[1]["last_updated_timestamp"], mv[0]["name"],
                               -int(mv[1]["version"])))
    chunk, nxt = page(items, p, SEARCH_MV_MAX, SEARCH_MV_MAX)
    out = {}
    if chunk:
        out["model_versions"] = [REG.mv_json(m, v) for m, v in chunk]
    if nxt:
        out["next_page_token"] = nxt
    return out


def alias_get(p):
    m = REG.model(p.get("name"))
    alias = p.get("alias")
    if not alias:
        raise missing("alias")
    ver = m["aliases"].get(alias)
    if ver is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Registered model alias {alias} not found.")
    return {"model_version": REG.mv_json(m, m["versions"][ver])}


def alias_set(b):
    m = REG.model(b.get("name"))
    alias = b.get("alias")
    check_alias(alias)
    v = REG.version(m, b.get("version"))
    m["aliases"][alias] = v["version"]
    m["last_updated_timestamp"] = now_ms()
    return {}


def alias_delete(b):
    m = REG.model(b.get("name"))
    alias = b.get("alias")
    if not alias:
        raise missing("alias")
    m["aliases"].pop(alias, None)
    return {}


def mv_set_tag(b):
    m = REG.model(b.get("name"))
    v = REG.version(m, b.get("version"))
    check_tag(b.get("key"), b.get("value"))
    v["tags"][b["key"]] = str(b["value"])
    v["last_updated_timestamp"] = now_ms()
    return {}


def rm_set_tag(b):
    m = REG.model(b.get("name"))
    check_tag(b.get("key"), b.get("value"))
    m["tags"][b["key"]] = str(b["value"])
    return {}


def mv_transition(b):
    m = REG.model(b.get("name"))
    v = REG.version(m, b.get("version"))
    stage = b.get("stage")
    if not stage:
        raise missing("stage")
    if "archive_existing_versions" not in b:
        raise missing("archive_existing_versions")
    canon = STAGES.get(str(stage).lower())
    if canon is None:
        raise MlflowError("INVALID_PARAMETER_VALUE",
                          f"Invalid Model Version stage: {stage}. Value must be one of None, "
                          "Staging, Production, Archived.")
    if b["archive_existing_versions"] and canon in ("Staging", "Production"):
        for other in m["versions"].values():
            if other is not v and other["current_stage"] == canon:
                other["current_stage"] = "Archived"
    v["current_stage"] = canon
    v["last_updated_timestamp"] = now_ms()
    return {"model_version": REG.mv_json(m, v)}


ROUTES = {
    ("GET", "registered-models/get"): rm_get,
    ("GET", "registered-models/search"): rm_search,
    ("GET", "model-versions/get"): mv_get,
    ("GET", "model-versions/search"): mv_search,
    ("GET", "registered-models/alias"): alias_get,
    ("POST", "registered-models/alias"): alias_set,
    ("DELETE", "registered-models/alias"): alias_delete,
    ("POST", "model-versions/set-tag"): mv_set_tag,
    ("POST", "registered-models/set-tag"): rm_set_tag,
    ("POST", "model-versions/transition-stage"): mv_transition,
}


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
