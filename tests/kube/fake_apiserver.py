"""FakeApiServer: a small HTTP server speaking the part of the Kubernetes REST API that the
adapter and kopf use, because no real API server can run here.

It serves discovery, create/get/list (namespaced and cluster-wide) with label selectors,
watch streams with resourceVersions, merge patches of objects and their /status, deletion
with finalizers and deletionTimestamp, owner-reference garbage collection, events, and pod
logs. `kubelet_step()` stands in for the kubelet and the Deployment/Job controllers: it
marks Deployments ready and runs each new Job's primary container as a real local process.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlparse

GROUPS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("", "v1"): [("pods", "Pod"), ("services", "Service"), ("configmaps", "ConfigMap"),
                 ("persistentvolumeclaims", "PersistentVolumeClaim"), ("events", "Event"), ("namespaces", "Namespace")],
    # Discoverable only: kopf waits to find these core resources before it starts.
    ("apiextensions.k8s.io", "v1"): [("customresourcedefinitions", "CustomResourceDefinition")],
    ("apps", "v1"): [("deployments", "Deployment")],
    ("batch", "v1"): [("jobs", "Job")],
    ("kubeflow.org", "v1beta1"): [("experiments", "Experiment"), ("suggestions", "Suggestion"), ("trials", "Trial")],
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
CLUSTER_SCOPED = {"namespaces", "customresourcedefinitions"}
Key = tuple[str, str, str, str]  # (group/version, plural, namespace, name)


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _json_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> bool:
    """Apply RFC 6902 add/replace/remove/test to a copy; False if a `test` fails (a conflict)."""
    for op in ops:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        target: Any = obj
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        if op["op"] == "test":
            current = target[int(last)] if isinstance(target, list) else target.get(last)
            if current != op["value"]:
                return False
        elif op["op"] == "remove":
            del target[int(last) if isinstance(target, list) else last]
        elif isinstance(target, list):
            index = len(target) if last == "-" else int(last)
            if op["op"] == "add":
                target.insert(index, copy.deepcopy(op["value"]))
            else:
                target[index] = copy.deepcopy(op["value"])
        else:
            target[last] = copy.deepcopy(op["value"])
    return True


def _matches(obj: dict[str, Any], selector: str) -> bool:
    if not selector:
        return True
    label, _, value = selector.partition("=")
    return obj["metadata"].get("labels", {}).get(label) == value


class FakeApiServer:
    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.logs: dict[tuple[str, str, str], str] = {}  # (ns, pod, container)
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content type)
        self.events: list[tuple[int, str, Key, dict[str, Any]]] = []  # (resourceVersion, type, key, object)
        self._version = itertools.count(1)
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self._stopping = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # --- state changes (all under the condition's lock) -------------------------------
    def _record(self, type_: str, key: Key, obj: dict[str, Any]) -> None:
        version = next(self._version)
        obj["metadata"]["resourceVersion"] = str(version)
        self.events.append((version, type_, key, copy.deepcopy(obj)))
        self._changed.notify_all()

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object as a client would (also used by tests and the kubelet)."""
        with self._changed:
            api_version, kind = obj["apiVersion"], obj["kind"]
            group, _, version = api_version.rpartition("/")
            plural = next(p for p, k in GROUPS[(group, version)] if k == kind)
            key = (api_version, plural, obj["metadata"]["namespace"], obj["metadata"]["name"])
            return self._create(key, obj)

    def _create(self, key: Key, body: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        obj["metadata"].update(uid=f"uid-{next(self._ids)}", creationTimestamp="2026-01-01T00:00:00Z",
                               namespace=key[2], generation=1)
        self.objects[key] = obj
        self._record("ADDED", key, obj)
        return obj

    def modify(self, key: Key, patch: dict[str, Any]) -> dict[str, Any]:
        with self._changed:
            return self._modify(key, patch)

    def _modify(self, key: Key, patch: dict[str, Any]) -> dict[str, Any]:
        obj = self.objects[key]
        _merge(obj, patch)
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
            return self._remove(key)
        self._record("MODIFIED", key, obj)
        return obj

    def _remove(self, key: Key) -> dict[str, Any]:
        obj = self.objects.pop(key)
        self._record("DELETED", key, obj)
        uid = obj["metadata"]["uid"]  # the garbage collector: owned objects go next
        for child_key, child in list(self.objects.items()):
            if any(ref.get("uid") == uid for ref in child["metadata"].get("ownerReferences", [])):
                self._delete(child_key)
        return obj

    def _delete(self, key: Key) -> dict[str, Any]:
        obj = self.objects[key]
        if obj["metadata"].get("finalizers"):
            if not obj["metadata"].get("deletionTimestamp"):
                obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:01Z"
                self._record("MODIFIED", key, obj)
            return obj
        return self._remove(key)

    def delete(self, key: Key) -> None:
        with self._changed:
            if key in self.objects:
                self._delete(key)

    def kind(self, kind: str) -> list[dict[str, Any]]:
        with self._changed:
            return [copy.deepcopy(o) for o in self.objects.values() if o["kind"] == kind]

    # --- the kubelet and the workload controllers ------------------------------------
    def kubelet_step(self) -> None:
        """Mark Deployments ready; run each new Job's first container to completion."""
        for deployment in self.kind("Deployment"):
            if not (deployment.get("status") or {}).get("readyReplicas"):
                meta = deployment["metadata"]
                self.modify(("apps/v1", "deployments", meta["namespace"], meta["name"]), {"status": {"readyReplicas": 1}})
        for job in self.kind("Job"):
            if job.get("status"):
                continue
            meta, template = job["metadata"], job["spec"]["template"]
            container = template["spec"]["containers"][0]
            argv = [sys.executable if a == "python" else a for a in container.get("command", []) + container.get("args", [])]
            env = {**os.environ, **{e["name"]: e["value"] for e in container.get("env", [])}}
            done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60, env=env)
            pod = f"{meta['name']}-pod"
            self.put({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": pod, "namespace": meta["namespace"], "labels": dict(template["metadata"]["labels"]),
                                   "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                                       "uid": meta["uid"]}]},
                      "status": {"phase": "Succeeded" if done.returncode == 0 else "Failed"}})
            self.logs[(meta["namespace"], pod, container["name"])] = done.stdout
            condition = "Complete" if done.returncode == 0 else "Failed"
            key = ("batch/v1", "jobs", meta["namespace"], meta["name"])
            if key in self.objects:
                self.modify(key, {"status": {"conditions": [{"type": condition, "status": "True"}]}})

    # --- HTTP -----------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as a real API server: a new connection per request would dominate
            # what the controller's throughput benchmark measures.
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle's algorithm the second waits for
            # the client's delayed ACK (~40 ms a request). Go's servers set TCP_NODELAY too.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                fake.requests.append((method, url.path, self.headers.get("Content-Type", "")))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                if method == "GET" and (query.get("watch") or [""])[0] in ("true", "1"):
                    self._watch(url.path, query)
                    return
                with fake._changed:
                    code, payload, content_type = fake.route(method, url.path, query, body)
                self._send(code, payload, content_type)

            def _watch(self, path: str, query: dict[str, list[str]]) -> None:
                """Stream events after the given resourceVersion until the server stops."""
                scope = fake.scope(path)
                if scope is None:
                    self._send(404, {"kind": "Status", "code": 404})
                    return
                since = int((query.get("resourceVersion") or ["0"])[0] or 0)
                selector = (query.get("labelSelector") or [""])[0]
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Connection", "close")  # the stream ends when the connection does
                self.end_headers()
                self.close_connection = True
                try:
                    while True:
                        with fake._changed:
                            pending = [e for e in fake.events if e[0] > since]
                            if not pending:
                                if fake._stopping:
                                    return
                                fake._changed.wait(0.5)
                                continue
                        for version, type_, key, obj in pending:
                            since = version
                            if fake.in_scope(scope, key) and _matches(obj, selector):
                                line = json.dumps({"type": type_, "object": obj}) + "\n"
                                self.wfile.write(line.encode())
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return Handler

    @staticmethod
    def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any], str]:
        return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                      "message": message, "code": code}, "application/json"

    @staticmethod
    def scope(path: str) -> tuple[str, str, str | None] | None:
        """(group/version, plural, namespace or None) of a collection path."""
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in ("api", "apis"):
            return None
        core = parts[0] == "api"
        group_version = parts[1] if core else f"{parts[1]}/{parts[2]}"
        rest = parts[2:] if core else parts[3:]
        if len(rest) == 1:
            return group_version, rest[0], None
        if len(rest) == 3 and rest[0] == "namespaces":
            return group_version, rest[2], rest[1]
        return None

    @staticmethod
    def in_scope(scope: tuple[str, str, str | None], key: Key) -> bool:
        group_version, plural, namespace = scope
        return key[0] == group_version and key[1] == plural and (namespace is None or key[2] == namespace)

    def _discovery(self, parts: list[str]) -> tuple[int, Any, str] | None:
        if parts == ["version"]:
            return 200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0"}, "application/json"
        if parts == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"]}, "application/json"
        if parts == ["apis"]:
            groups = [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                       "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for (g, v) in GROUPS if g]
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}, "application/json"
        core = parts[0] == "api"
        group, version = ("", parts[1]) if core else (parts[1], parts[2] if len(parts) > 2 else "")
        if len(parts) != (2 if core else 3):
            return None
        if (group, version) not in GROUPS:
            return self._status(404, "NotFound", "/".join(parts))
        resources = []
        for plural, kind in GROUPS[(group, version)]:
            resources.append({"name": plural, "singularName": kind.lower(), "namespaced": plural not in CLUSTER_SCOPED,
                              "kind": kind, "verbs": VERBS})
            extra = ["log"] if plural == "pods" else ["status"] if group == "kubeflow.org" else []
            resources += [{"name": f"{plural}/{sub}", "singularName": "", "namespaced": True, "kind": kind,
                           "verbs": ["get", "patch"]} for sub in extra]
        group_version = f"{group}/{version}" if group else version
        return 200, {"kind": "APIResourceList", "groupVersion": group_version, "resources": resources}, \
            "application/json"

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, str]:
        parts = [p for p in path.split("/") if p]
        discovered = self._discovery(parts) if method == "GET" else None
        if discovered is not None:
            return discovered
        scope = self.scope(path)
        if scope is not None:
            group_version, plural, ns = scope
            if method == "POST" and ns is not None:
                key = (group_version, plural, ns, body["metadata"]["name"])
                if key in self.objects:
                    return self._status(409, "AlreadyExists", f"{plural} {key[3]!r} already exists")
                return 201, self._create(key, body), "application/json"
            if method == "GET":
                selector = (query.get("labelSelector") or [""])[0]
                group, _, version = group_version.rpartition("/")
                kind = dict(GROUPS[(group, version)])[plural]
                items = [o for k, o in self.objects.items() if self.in_scope(scope, k) and _matches(o, selector)]
                version = str(self.events[-1][0]) if self.events else "0"
                return 200, {"kind": f"{kind}List", "apiVersion": group_version,
                             "metadata": {"resourceVersion": version}, "items": items}, "application/json"
            return self._status(405, "MethodNotAllowed", method)
        # An item, maybe with a subresource: .../namespaces/{ns}/{plural}/{name}[/{sub}]
        core = parts[0] == "api"
        group_version = parts[1] if core else f"{parts[1]}/{parts[2]}"
        rest = parts[2:] if core else parts[3:]
        if len(rest) < 4 or rest[0] != "namespaces":
            return self._status(404, "NotFound", path)
        ns, plural, name = rest[1], rest[2], rest[3]
        sub = rest[4] if len(rest) > 4 else None
        if sub == "log" and method == "GET":
            container = (query.get("container") or [""])[0]
            return 200, self.logs.get((ns, name, container), ""), "text/plain"
        key = (group_version, plural, ns, name)
        if key not in self.objects:
            return self._status(404, "NotFound", f"{plural} {name!r} not found")
        if method == "GET":
            return 200, self.objects[key], "application/json"
        if method == "PATCH" and isinstance(body, list):
            patched = copy.deepcopy(self.objects[key])
            if not _json_patch(patched, body):
                return self._status(409, "Conflict", "a JSON-patch test failed")
            if sub != "status":  # the main resource ignores status changes
                patched.pop("status", None)
                if "status" in self.objects[key]:
                    patched["status"] = self.objects[key]["status"]
            self.objects[key] = patched
            return 200, self._modify(key, {}), "application/json"
        if method == "PATCH":
            # The main resource ignores status; /status takes only status (as with a status subresource).
            patch = {"status": body.get("status")} if sub == "status" else {k: v for k, v in body.items() if k != "status"}
            if patch.get("status") is None and sub == "status":
                return 200, self.objects[key], "application/json"
            return 200, self._modify(key, patch), "application/json"
        if method == "DELETE":
            return 200, self._delete(key), "application/json"
        return self._status(405, "MethodNotAllowed", method)
