"""test_openapi.py -- web/openapi.json against the code and a real cluster.

The document is served at /openapi.json; its (method, path) set is exactly
the route table of api/router.c (less the two static routes, plus the
document itself); and real answers of a two-region cluster -- /v1, the
Mastodon subset and OAuth, successes and errors, stream events included --
validate against the schema the document gives for their route, status
and content type, with Ajv (JSON Schema 2020-12, as OpenAPI 3.1 uses) run
by tests/openapi/validate.mjs. The same validator is shown wrong instances
it must reject, so a schema that accepts anything cannot pass unseen.

Schema validation needs node and tests/openapi/node_modules (`npm ci` in
tests/openapi); without them those checks skip, saying so, while the
route, status and content-type checks still run.
"""
import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse

from harness import ROOT, Cluster, EventStream, wait_for
from test_log_auth import stop_checked

DOC_PATH = os.path.join(ROOT, "web", "openapi.json")
ROUTER_C = os.path.join(ROOT, "api", "router.c")
VALIDATE_MJS = os.path.join(ROOT, "tests", "openapi", "validate.mjs")
NODE_MODULES = os.path.join(ROOT, "tests", "openapi", "node_modules")
ROUTE_RE = re.compile(r'\{\s*API_([A-Z]+)\s*,\s*"([^"]*)"\s*,\s*"([^"]*)"\s*,\s*(\w+)\s*\}')
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
OOB = "urn:ietf:wg:oauth:2.0:oob"
FORM = "application/x-www-form-urlencoded"


def router_routes():
    """(METHOD, pattern) of api/router.c's routes[], without the static ones."""
    with open(ROUTER_C) as f:
        src = f.read()
    table = src[src.index("routes[] = {"):]
    table = table[:table.index("};")]
    out = set()
    for method, pattern, _name, handler in ROUTE_RE.findall(table):
        if handler == "api_static":
            continue
        out.add((method, pattern))
    assert out, "no routes parsed from api/router.c"
    return out


def template_to_pattern(t):
    """/v1/users/{id}/posts -> /v1/users/*/posts (the router's spelling)."""
    return "/".join("*" if re.fullmatch(r"\{[^{}/]+\}", s) else s for s in t.split("/"))


def load_doc():
    with open(DOC_PATH) as f:
        return json.load(f)


def resolve(doc, ref):
    """The node a local $ref ("#/components/...") names."""
    assert ref.startswith("#/components/"), f"unsupported $ref {ref}"
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validator_missing():
    """Why validate.mjs cannot run here, or None."""
    if not shutil.which("node"):
        return "node is not installed"
    if not os.path.isdir(os.path.join(NODE_MODULES, "ajv")):
        return "tests/openapi/node_modules is missing (run `npm ci` in tests/openapi)"
    return None


def run_validator(cases):
    """Runs validate.mjs on cases: (exit code, its output)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cases, f)
        path = f.name
    try:
        p = subprocess.run(["node", VALIDATE_MJS, DOC_PATH, path], capture_output=True,
                           text=True, timeout=120)
        return p.returncode, p.stdout + p.stderr
    finally:
        os.unlink(path)


def form(d):
    """d urlencoded (a list value repeats its key)."""
    return urllib.parse.urlencode(d, doseq=True).encode()


def link_urls(r):
    """rel -> path+query of a Link header."""
    out = {}
    for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', r.headers.get("link", "")):
        u = urllib.parse.urlsplit(url)
        out[rel] = u.path + "?" + u.query
    return out


class MastoStream(EventStream):
    """A Mastodon stream; of(kind) is the data of its events of that name."""

    def of(self, kind):
        return self.data_of(kind)


class DocumentTest(unittest.TestCase):
    """Checks that need no server."""

    def test_routes_match_router_table(self):
        doc = load_doc()
        in_doc = {}
        for template, item in doc["paths"].items():
            for m in item:
                if m in HTTP_METHODS:
                    in_doc[(m.upper(), template_to_pattern(template))] = template
        expected = router_routes() | {("GET", "/openapi.json")}
        missing = sorted(expected - set(in_doc))
        extra = sorted((k, in_doc[k]) for k in set(in_doc) - expected)
        self.assertEqual((missing, extra), ([], []),
                         f"routes in api/router.c but not in the document: {missing}; "
                         f"in the document but not in api/router.c: {extra}")

    def test_path_parameters_declared(self):
        doc = load_doc()
        for template, item in doc["paths"].items():
            names = re.findall(r"\{([^{}/]+)\}", template)
            for m, o in item.items():
                if m not in HTTP_METHODS:
                    continue
                declared = [p for p in (resolve(doc, p["$ref"]) if "$ref" in p else p
                                        for p in o.get("parameters", [])) if p["in"] == "path"]
                self.assertEqual(sorted(p["name"] for p in declared), sorted(names),
                                 f"{m.upper()} {template}")
                self.assertTrue(all(p.get("required") for p in declared), template)

    def test_refs_resolve(self):
        doc = load_doc()

        def walk(node):
            if isinstance(node, dict):
                for k, x in node.items():
                    if k == "$ref":
                        resolve(doc, x)
                    else:
                        walk(x)
            elif isinstance(node, list):
                for x in node:
                    walk(x)
        walk(doc)

    def test_operations_tagged_and_errors_in_their_dialect(self):
        """Every operation has a known tag and an operationId; the errors of
        /api/ routes are MastoError, of /oauth/ OAuthError, of the rest Error."""
        doc = load_doc()
        tags = {t["name"] for t in doc["tags"]}
        ids = set()
        for template, item in doc["paths"].items():
            want = ("MastoError" if template.startswith("/api/") else
                    "OAuthError" if template.startswith("/oauth/") else "Error")
            for m, o in item.items():
                self.assertTrue(set(o["tags"]) <= tags, (m, template))
                self.assertNotIn(o["operationId"], ids)
                ids.add(o["operationId"])
                for status, resp in o["responses"].items():
                    if status != "default" and int(status) < 400:
                        continue
                    while "$ref" in resp:
                        resp = resolve(doc, resp["$ref"])
                    js = resp.get("content", {}).get("application/json")
                    if js:
                        self.assertEqual(js["schema"], {"$ref": f"#/components/schemas/{want}"},
                                         f"{m.upper()} {template} {status}")

    def test_validator_rejects_wrong_instances(self):
        """validate.mjs compiles every schema, accepts right instances and
        rejects wrong ones (a validator that accepts anything would pass
        every live answer)."""
        why = validator_missing()
        if why:
            self.skipTest(f"schema validation skipped: {why}")
        S = "#/components/schemas/"
        post = {"id": "0001234567890abc-paris", "author": "a@paris", "text": "hi",
                "created_at": "2026-01-02T03:04:05.678Z", "region": "paris"}
        account = {"id": "a@paris", "username": "a", "acct": "a@paris", "display_name": "A",
                   "locked": False, "bot": False, "group": False, "discoverable": None,
                   "created_at": "2026-01-02T03:04:05.678Z", "note": "",
                   "url": "http://h:1/v1/users/a@paris", "uri": "http://h:1/v1/users/a@paris",
                   "avatar": "http://h:1/avatar.svg", "avatar_static": "http://h:1/avatar.svg",
                   "header": "http://h:1/header.svg", "header_static": "http://h:1/header.svg",
                   "followers_count": 0, "following_count": 0, "statuses_count": 0,
                   "last_status_at": None, "emojis": [], "fields": []}
        good = [(S + "Post", post), (S + "MastoAccount", account),
                (S + "MastoError", {"error": "Record not found"}),
                (S + "OAuthError", {"error": "invalid_grant", "error_description": "x"}),
                (S + "MastoCredentialAccount",
                 {**account, "source": {"privacy": "public", "sensitive": False, "language": "",
                                        "note": "", "fields": [], "follow_requests_count": 0}})]
        bad = [(S + "Post", {**post, "text": 5}),                           # wrong type
               (S + "Post", {k: x for k, x in post.items() if k != "author"}),  # required
               (S + "Post", {**post, "extra": 1}),                          # additionalProperties
               (S + "Post", {**post, "created_at": "yesterday"}),           # pattern
               (S + "NewPost", {"text": "x" * 501}),                        # maxLength
               (S + "Region", {"region": "paris", "peers": [], "hlc": 123, "replicating": True}),
               (S + "UserIdPage", {"items": [1], "next": None}),
               (S + "MastoAccount", {**account, "extra": 1}),               # unevaluatedProperties
               (S + "MastoAccount", {**account, "source": {}}),             # only Credential has it
               (S + "MastoAccount", {**account, "url": "not a url"}),       # format uri
               (S + "MastoAccount", {**account, "created_at": "2026-13-45T99:00:00Z"}),  # date-time
               (S + "MastoAccount", {**account, "emojis": [{}]}),
               (S + "MastoCredentialAccount", account),                     # source missing
               (S + "MastoError", {"error": {"code": "x", "message": "y"}}),  # the /v1 shape
               (S + "Error", {"error": "x"}),
               (S + "MastoStatusId", "12345"),
               (S + "OAuthError", {"error": "Bad Code", "error_description": "x"})]
        cases = ([{"label": f"good {i}", "ref": r, "instance": x} for i, (r, x) in enumerate(good)]
                 + [{"label": f"bad {i}", "ref": r, "instance": x, "valid": False}
                    for i, (r, x) in enumerate(bad)]
                 + [{"label": "by path", "path": "/v1/timeline", "method": "get", "status": "401",
                     "instance": {"error": {"code": "unauthorized", "message": "m"}},
                     "headers": {"WWW-Authenticate": "Bearer"}}])
        rc, out = run_validator(cases)
        self.assertEqual(rc, 0, out)
        self.assertIn(" instances checked, 0 failures", out)
        # And it does say no: each bad one alone, as a case expected valid, fails.
        rc, out = run_validator([{"label": f"bad {i}", "ref": r, "instance": x}
                                 for i, (r, x) in enumerate(bad)]
                                + [{"label": "bad header", "path": "/v1/timeline",
                                    "method": "get", "status": "401", "instance":
                                    {"error": {"code": "unauthorized", "message": "m"}},
                                    "headers": {"WWW-Authenticate": "Basic"}}])
        self.assertEqual(rc, 1, out)
        self.assertEqual(out.count("FAIL "), len(bad) + 1, out)


class LiveTest(unittest.TestCase):
    """Real answers of a real two-region cluster against the document."""

    @classmethod
    def setUpClass(cls):
        cls.doc = load_doc()
        cls.c = Cluster(names=("paris", "tokyo"), args=["--demo", "--rate-limit", "0"])
        cls.paris, cls.tokyo = cls.c["paris"], cls.c["tokyo"]

    @classmethod
    def tearDownClass(cls):
        stop_checked(cls.c)

    def setUp(self):
        self.cases = []

    def response_spec(self, method, template, status):
        op = self.doc["paths"][template][method.lower()]
        spec = op["responses"].get(str(status))
        self.assertIsNotNone(spec, f"{method} {template}: status {status} is not documented")
        while "$ref" in spec:
            spec = resolve(self.doc, spec["$ref"])
        return spec

    def validate(self, method, template, r, status=None):
        """Checks that r's status and content type are documented for
        template and queues its body and headers for validate.mjs
        (check_cases); returns the body as JSON (None if it is not JSON)."""
        if status is not None:
            self.assertIn(r.status, status if isinstance(status, tuple) else (status,), r)
        spec = self.response_spec(method, template, r.status)
        content = spec.get("content")
        case = {"label": f"{method} {template} {r.status} (#{len(self.cases)})", "path": template,
                "method": method.lower(), "status": str(r.status), "headers": r.headers}
        if not content:
            self.assertEqual(r.body, "", f"{method} {template} {r.status}: body not documented")
            self.cases.append(case)
            return None
        ctype = r.headers.get("content-type", "").split(";")[0].strip()
        self.assertIn(ctype, content, f"{method} {template} {r.status}: {ctype} not documented")
        body = r.json if ctype == "application/json" else r.body
        self.cases.append({**case, "content_type": ctype, "instance": body})
        for h in spec.get("headers", {}):
            if h in ("Session-Token",) and method != "GET":
                self.assertIn(h.lower(), r.headers, f"{method} {template}: no {h}")
        return body

    def schema_case(self, ref, instance, label):
        self.cases.append({"label": label, "ref": "#/components/schemas/" + ref,
                           "instance": instance})

    def check_cases(self):
        """Validates the queued answers with validate.mjs."""
        why = validator_missing()
        if why:
            self.skipTest(f"the answers' statuses were checked, their schemas not: {why}")
        self.assertGreater(len(self.cases), 0)
        rc, out = run_validator(self.cases)
        self.assertEqual(rc, 0, f"answers that do not match web/openapi.json:\n{out}")

    def test_openapi_served(self):
        r = self.paris.client.get("/openapi.json")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), "application/json")
        self.assertEqual(r.json["openapi"], "3.1.0")
        self.assertEqual(r.json, self.doc)
        self.validate("GET", "/openapi.json", r)
        self.check_cases()


    def test_answers_match_document(self):
        p, t = self.paris.client, self.tokyo.client
        V = self.validate

        alice = V("POST", "/v1/users", p.post("/v1/users", {"name": "oa_alice", "display_name": "Alice"}), 201)
        bob = V("POST", "/v1/users", t.post("/v1/users", {"name": "oa_bob"}), 201)
        V("POST", "/v1/users", p.post("/v1/users", {"name": "oa_alice"}), 409)
        V("POST", "/v1/users", p.post("/v1/users", {"name": "Bad Name"}), 400)
        V("POST", "/v1/users", p.post("/v1/users", raw=b"{}", headers={"Content-Type": "text/plain"}), 415)
        ta, tb = alice["token"], bob["token"]
        V("GET", "/v1/users/{id}", p.get(f"/v1/users/{alice['id']}"), 200)
        V("GET", "/v1/users/{id}", p.get("/v1/users/nobody@paris"), 404)
        V("GET", "/v1/users/{id}", p.get("/v1/users/not-an-id"), 400)

        wait_for(lambda: p.get(f"/v1/users/{bob['id']}").status == 200, 20, what="bob in paris")
        wait_for(lambda: t.get(f"/v1/users/{alice['id']}").status == 200, 20, what="alice in tokyo")
        r = p.put(f"/v1/following/{bob['id']}", token=ta)
        V("PUT", "/v1/following/{id}", r, 200)
        self.assertIn("session-token", r.headers)
        session = r.headers["session-token"]
        V("PUT", "/v1/following/{id}", p.put(f"/v1/following/{alice['id']}", token=ta), 400)
        V("PUT", "/v1/following/{id}", p.put("/v1/following/ghost@paris", token=ta), 404)
        V("PUT", "/v1/following/{id}", p.put(f"/v1/following/{bob['id']}"), 401)
        V("PUT", "/v1/following/{id}", t.put(f"/v1/following/{alice['id']}", token=tb), 200)
        V("GET", "/v1/users/{id}/following", p.get(f"/v1/users/{alice['id']}/following"), 200)
        V("GET", "/v1/users/{id}/followers", p.get(f"/v1/users/{bob['id']}/followers?limit=1"), 200)
        V("GET", "/v1/users/{id}/following", p.get(f"/v1/users/{alice['id']}/following?limit=0"), 400)
        self.assertEqual(p.get(f"/v1/users/{alice['id']}/following?limit=0").json["error"]["code"],
                         "invalid_limit")
        V("GET", "/v1/users/{id}/followers", p.get("/v1/users/ghost@paris/followers"), 404)

        post = V("POST", "/v1/posts", p.post("/v1/posts", {"text": "bonjour"}, token=ta), 201)
        r = p.post("/v1/posts?ack=all", {"text": "tout le monde"}, token=ta)
        V("POST", "/v1/posts", r, (201, 202))
        self.assertIn("acked-by", r.headers)
        self.assertIn("session-token", r.headers)
        r = p.post("/v1/posts", {"text": "k1"}, token=ta, headers={"Idempotency-Key": "oa-1"})
        V("POST", "/v1/posts", r, 201)
        V("POST", "/v1/posts", p.post("/v1/posts", {"text": "k2"}, token=ta,
                                      headers={"Idempotency-Key": "oa-1"}), 422)
        V("POST", "/v1/posts", p.post("/v1/posts?ack=most", {"text": "x"}, token=ta), 400)
        V("POST", "/v1/posts", p.post("/v1/posts", {"text": "x" * 501}, token=ta), 400)
        V("POST", "/v1/posts", p.post("/v1/posts", {"text": "x"}), 401)
        V("POST", "/v1/posts", p.post("/v1/posts", raw=b"{", token=ta,
                                      headers={"Content-Type": "application/json"}), 400)
        V("POST", "/v1/posts", p.post("/v1/posts", raw=b"x" * (64 * 1024 + 1), token=ta,
                                      headers={"Content-Type": "application/json"}), 413)
        V("GET", "/v1/posts/{id}", p.get(f"/v1/posts/{post['id']}"), 200)
        V("GET", "/v1/posts/{id}", p.get("/v1/posts/00000000000000ff-paris"), 404)
        V("GET", "/v1/posts/{id}", p.get("/v1/posts/nope"), 400)
        V("GET", "/v1/users/{id}/posts", p.get(f"/v1/users/{alice['id']}/posts"), 200)
        V("GET", "/v1/users/{id}/posts", p.get(f"/v1/users/{alice['id']}/posts?cursor=zzz"), 400)
        wait_for(lambda: len(t.get("/v1/timeline", token=tb).json["items"]) >= 3, 20,
                 what="alice's posts in bob's timeline")
        page = V("GET", "/v1/timeline", t.get("/v1/timeline?limit=2", token=tb), 200)
        self.assertIsNotNone(page["next"])
        V("GET", "/v1/timeline", t.get(f"/v1/timeline?limit=2&cursor={page['next']}", token=tb), 200)
        V("GET", "/v1/timeline", p.get("/v1/timeline?limit=0", token=ta), 400)
        V("GET", "/v1/timeline", p.get("/v1/timeline?limit=101", token=ta), 400)
        V("GET", "/v1/timeline", p.get("/v1/timeline"), 401)
        V("GET", "/v1/timeline", p.get("/v1/timeline", token="x@paris." + "A" * 43), 401)

        msg = V("POST", "/v1/messages", p.post("/v1/messages", {"to": bob["id"], "text": "salut"},
                                               token=ta), 201)
        V("POST", "/v1/messages", p.post("/v1/messages", {"to": "ghost@paris", "text": "x"}, token=ta), 404)
        V("POST", "/v1/messages", p.post("/v1/messages", {"to": bob["id"]}, token=ta), 400)
        V("POST", "/v1/messages", p.post("/v1/messages", {"to": bob["id"], "text": "x" * 2001},
                                         token=ta), 400)
        V("GET", "/v1/messages/{peer}", p.get(f"/v1/messages/{bob['id']}", token=ta), 200)
        V("GET", "/v1/messages/{peer}", p.get(f"/v1/messages/{bob['id']}?limit=abc", token=ta), 400)
        V("GET", "/v1/messages/{peer}", p.get(f"/v1/messages/{bob['id']}"), 401)
        wait_for(lambda: t.get(f"/v1/messages/{alice['id']}", token=tb).json["items"], 20,
                 what="the message in tokyo")
        convs = V("GET", "/v1/conversations", t.get("/v1/conversations", token=tb), 200)
        self.assertEqual(convs["items"][0]["latest"]["id"], msg["id"])
        V("GET", "/v1/conversations", p.get("/v1/conversations?cursor=bad", token=ta), 400)

        V("GET", "/v1/region", p.get("/v1/region"), 200)
        V("GET", "/v1/cluster", p.get("/v1/cluster"), 200)
        wait_for(lambda: len(p.get("/v1/cluster").json["regions"]) == 2, 20, what="both announced")
        V("GET", "/v1/cluster", t.get("/v1/cluster"), 200)
        V("GET", "/v1/replication", p.get("/v1/replication"), 200)
        V("GET", "/v1/digest", p.get("/v1/digest"), 200)
        r = p.get("/v1/digest", headers={"Session-Token": "garbage"})
        V("GET", "/v1/digest", r, 400)
        V("GET", "/v1/digest", p.get("/v1/digest", headers={"Session-Token": session,
                                                            "Session-Wait-Ms": "-1"}), 400)
        r = t.get("/v1/digest", headers={"Session-Token": session})
        V("GET", "/v1/digest", r, 200)
        self.assertIn("session-token", r.headers)
        V("GET", "/health", p.get("/health"), 200)
        r = p.get("/metrics")
        V("GET", "/metrics", r, 200)

        V("POST", "/v1/admin/replication", p.post("/v1/admin/replication", {"delay_ms": 0}), 200)
        V("POST", "/v1/admin/replication", p.post("/v1/admin/replication", {}), 400)
        V("POST", "/v1/admin/replication", p.post("/v1/admin/replication",
                                                  {"delay_ms": 0, "peer": "nowhere"}), 404)
        V("DELETE", "/v1/admin/peers/{name}", p.delete("/v1/admin/peers/Bad-Name"), 400)
        V("DELETE", "/v1/admin/peers/{name}", p.delete("/v1/admin/peers/nowhere"), 404)

        wait_for(lambda: t.get(f"/v1/posts/{post['id']}").status == 200, 20, what="post in tokyo")
        V("DELETE", "/v1/posts/{id}", t.delete(f"/v1/posts/{post['id']}", token=tb), 403)
        V("DELETE", "/v1/posts/{id}", p.delete(f"/v1/posts/{post['id']}"), 401)
        r = p.delete(f"/v1/posts/{post['id']}", token=ta)
        V("DELETE", "/v1/posts/{id}", r, 204)
        self.assertIn("session-token", r.headers)
        V("GET", "/v1/posts/{id}", p.get(f"/v1/posts/{post['id']}"), 404)
        V("DELETE", "/v1/following/{id}", p.delete(f"/v1/following/{bob['id']}", token=ta), 204)
        V("DELETE", "/v1/following/{id}", p.delete(f"/v1/following/{bob['id']}?ack=all", token=ta),
          (204, 202))
        self.c.wait_converged(30)
        self.check_cases()

    def test_mastodon_answers_match_document(self):
        """Every Mastodon route, with account tokens (which carry every
        scope): successes, the Link header, errors, and stream events."""
        p, t = self.paris.client, self.tokyo.client
        V = self.validate

        def reg(client, name):
            return V("POST", "/v1/users", client.post("/v1/users", {"name": name}), 201)

        ann, ben, cat = reg(p, "ma_ann"), reg(p, "ma_ben"), reg(t, "ma_cat")
        ta, tb, tc = ann["token"], ben["token"], cat["token"]
        A, B, C = ann["id"], ben["id"], cat["id"]

        V("GET", "/api/v1/instance", p.get("/api/v1/instance"), 200)
        V("GET", "/api/v2/instance", t.get("/api/v2/instance"), 200)

        me = V("GET", "/api/v1/accounts/verify_credentials",
               p.get("/api/v1/accounts/verify_credentials", token=ta), 200)
        self.assertEqual(me["id"], A)
        V("GET", "/api/v1/accounts/verify_credentials",
          p.get("/api/v1/accounts/verify_credentials"), 401)
        V("GET", "/api/v1/accounts/verify_credentials",
          p.get("/api/v1/accounts/verify_credentials", token="x@paris." + "A" * 43), 401)
        V("GET", "/api/v1/accounts/lookup", p.get("/api/v1/accounts/lookup?acct=ma_ann"), 200)
        self.assertEqual(V("GET", "/api/v1/accounts/lookup",
                           p.get(f"/api/v1/accounts/lookup?acct=@{B}"), 200)["id"], B)
        V("GET", "/api/v1/accounts/lookup", p.get("/api/v1/accounts/lookup"), 400)
        V("GET", "/api/v1/accounts/lookup", p.get("/api/v1/accounts/lookup?acct=ghost"), 404)
        V("GET", "/api/v1/accounts/{id}", p.get(f"/api/v1/accounts/{A}"), 200)
        V("GET", "/api/v1/accounts/{id}", p.get("/api/v1/accounts/ghost@paris"), 404)
        V("GET", "/api/v1/accounts/{id}", p.get("/api/v1/accounts/not-an-id"), 404)

        # Follows: ann follows ben (here) and cat (in tokyo, once it is here).
        rel = V("POST", "/api/v1/accounts/{id}/follow",
                p.post(f"/api/v1/accounts/{B}/follow", token=ta), 200)
        self.assertTrue(rel["following"])
        V("POST", "/api/v1/accounts/{id}/follow", p.post(f"/api/v1/accounts/{A}/follow", token=ta),
          400)
        V("POST", "/api/v1/accounts/{id}/follow",
          p.post("/api/v1/accounts/ghost@paris/follow", token=ta), 404)
        V("POST", "/api/v1/accounts/{id}/follow", p.post(f"/api/v1/accounts/{B}/follow"), 401)
        wait_for(lambda: p.get(f"/api/v1/accounts/{C}").status == 200, 20, what="cat in paris")
        V("POST", "/api/v1/accounts/{id}/follow", p.post(f"/api/v1/accounts/{C}/follow", token=ta,
                                                        raw=form({"reblogs": "true"}),
                                                        headers={"Content-Type": FORM}), 200)
        V("POST", "/api/v1/accounts/{id}/follow", p.post(f"/api/v1/accounts/{A}/follow", token=tb),
          200)
        rels = V("GET", "/api/v1/accounts/relationships",
                 p.get(f"/api/v1/accounts/relationships?id[]={B}&id[]={C}&id[]=junk", token=ta),
                 200)
        self.assertEqual([x["id"] for x in rels], [B, C])
        self.assertTrue(V("GET", "/api/v1/accounts/relationships",
                          p.get(f"/api/v1/accounts/relationships?id={B}", token=ta),
                          200)[0]["followed_by"])
        V("GET", "/api/v1/accounts/relationships",
          p.get(f"/api/v1/accounts/relationships?id[]={B}"), 401)
        page = V("GET", "/api/v1/accounts/{id}/following",
                 p.get(f"/api/v1/accounts/{A}/following?limit=1"), 200)
        self.assertEqual(len(page), 1)
        nxt = link_urls(p.get(f"/api/v1/accounts/{A}/following?limit=1")).get("next")
        self.assertTrue(nxt, "a next link for a page of one of two")
        V("GET", "/api/v1/accounts/{id}/following", p.get(nxt), 200)
        V("GET", "/api/v1/accounts/{id}/followers", p.get(f"/api/v1/accounts/{B}/followers"), 200)
        V("GET", "/api/v1/accounts/{id}/followers",
          p.get(f"/api/v1/accounts/{B}/followers?max_id=junk"), 400)
        V("GET", "/api/v1/accounts/{id}/following", p.get("/api/v1/accounts/ghost@paris/following"),
          404)

        # Statuses: JSON and form bodies, Idempotency-Key, what is refused.
        S = "/api/v1/statuses"

        def status(body, token=tb, headers=None, as_form=False):
            if as_form:
                return p.post(S, raw=form(body), token=token,
                              headers={"Content-Type": FORM, **(headers or {})})
            return p.post(S, body, token=token, headers=headers)

        s1 = V("POST", S, status({"status": "bonjour <b>&</b>\n\nbis"}), 200)
        self.assertEqual(s1["content"], "<p>bonjour &lt;b&gt;&amp;&lt;/b&gt;</p><p>bis</p>")
        s2 = V("POST", S, status({"status": "deux", "visibility": "unlisted"}, as_form=True), 200)
        s3 = V("POST", S, status({"status": "trois"}, headers={"Idempotency-Key": "ma-1"}), 200)
        again = V("POST", S, status({"status": "trois"}, headers={"Idempotency-Key": "ma-1"}), 200)
        self.assertEqual(again["id"], s3["id"])
        V("POST", S, status({"status": "autre"}, headers={"Idempotency-Key": "ma-1"}), 422)
        V("POST", S, status({"status": "x"}, headers={"Idempotency-Key": "bad key"}), 400)
        V("POST", S, status({"status": "  \n"}), 422)
        V("POST", S, status({"visibility": "public"}), 422)
        V("POST", S, status({"status": "x" * 501}), 422)
        V("POST", S, status({"status": "x", "visibility": "everyone"}), 422)
        V("POST", S, status({"status": "x", "media_ids": ["1"]}), 422)
        V("POST", S, status({"status": "x", "media_ids[]": "1"}, as_form=True), 422)
        V("POST", S, status({"status": "x", "spoiler_text": "cw"}), 422)
        V("POST", S, status({"status": "x", "in_reply_to_id": s1["id"]}), 422)
        V("POST", S, status({"status": "no one", "visibility": "direct"}), 422)
        V("POST", S, status({"status": "@ghost hi", "visibility": "direct"}), 404)
        V("POST", S, status({"status": "x"}, token=None), 401)
        V("POST", S, p.post(S, raw=b"status=x", token=tb, headers={"Content-Type": "text/plain"}),
          415)
        V("POST", S, p.post(S, raw=b"{", token=tb, headers={"Content-Type": "application/json"}),
          400)
        V("POST", S, p.post(S, raw=b"status=%zz", token=tb, headers={"Content-Type": FORM}), 400)
        V("POST", S, p.post(S, raw=b"x" * (64 * 1024 + 1), token=tb,
                            headers={"Content-Type": FORM}), 413)
        dm = V("POST", S, status({"status": "@ma_ann psst", "visibility": "direct"}), 200)
        self.assertEqual(dm["visibility"], "direct")
        self.assertEqual([m["id"] for m in dm["mentions"]], [A])

        V("GET", "/api/v1/statuses/{id}", p.get(f"{S}/{s1['id']}"), 200)
        V("GET", "/api/v1/statuses/{id}", p.get(f"{S}/{dm['id']}", token=ta), 200)
        V("GET", "/api/v1/statuses/{id}", p.get(f"{S}/{dm['id']}"), 404)
        V("GET", "/api/v1/statuses/{id}", p.get(f"{S}/{dm['id']}", token="x@paris." + "A" * 43),
          401)
        V("GET", "/api/v1/statuses/{id}", p.get(f"{S}/12345"), 404)
        V("GET", "/api/v1/statuses/{id}", p.get(f"{S}/{'0' * 20}{'12' * 32}"), 404)

        # The home timeline and an account's statuses, paged as Mastodon pages.
        H = "/api/v1/timelines/home"
        wait_for(lambda: len(p.get(H, token=ta).json) >= 3, 20, what="ben's statuses at ann's")
        top = V("GET", H, p.get(f"{H}?limit=2", token=ta), 200)
        self.assertEqual([x["id"] for x in top], [s3["id"], s2["id"]])
        links = link_urls(p.get(f"{H}?limit=2", token=ta))
        self.assertEqual(set(links), {"next", "prev"})
        older = V("GET", H, p.get(links["next"], token=ta), 200)
        self.assertEqual(older[0]["id"], s1["id"])
        newer = V("GET", H, p.get(f"{H}?min_id={s1['id']}&limit=1", token=ta), 200)
        self.assertEqual([x["id"] for x in newer], [s2["id"]])
        self.assertEqual([x["id"] for x in V("GET", H, p.get(f"{H}?since_id={s1['id']}&limit=1",
                                                             token=ta), 200)], [s3["id"]])
        V("GET", H, p.get(f"{H}?limit=500", token=ta), 200)
        V("GET", H, p.get(f"{H}?since_id={s3['id']}", token=ta), 200)
        V("GET", H, p.get(f"{H}?limit=abc", token=ta), 400)
        V("GET", H, p.get(f"{H}?max_id=nope", token=ta), 400)
        V("GET", H, p.get(H), 401)
        AS = "/api/v1/accounts/{id}/statuses"
        V("GET", AS, p.get(f"/api/v1/accounts/{B}/statuses?limit=1"), 200)
        V("GET", AS, t.get(f"/api/v1/accounts/{C}/statuses"), 200)
        V("GET", AS, p.get(f"/api/v1/accounts/{B}/statuses?min_id=bad"), 400)
        V("GET", AS, p.get("/api/v1/accounts/ghost@paris/statuses"), 404)

        # Conversations: ben's direct status, and one from cat in tokyo.
        CV = "/api/v1/conversations"
        wait_for(lambda: t.get(f"/api/v1/accounts/{A}").status == 200, 20, what="ann in tokyo")
        V("POST", S, t.post(S, {"status": f"@{A} from tokyo", "visibility": "direct"}, token=tc),
          200)
        wait_for(lambda: len(p.get(CV, token=ta).json) == 2, 20, what="two conversations")
        convs = V("GET", CV, p.get(CV, token=ta), 200)
        self.assertEqual({c["id"] for c in convs}, {B, C})
        r = p.get(f"{CV}?limit=1", token=ta)
        V("GET", CV, r, 200)
        V("GET", CV, p.get(link_urls(r)["next"], token=ta), 200)
        V("GET", CV, p.get(f"{CV}?max_id=bad", token=ta), 400)
        V("GET", CV, p.get(CV), 401)

        # Streaming: update, conversation and delete events, in Mastodon's shapes.
        ST = "/api/v1/streaming"
        bad = MastoStream(self.paris.port, f"{ST}?stream=public&access_token={ta}")
        self.assertEqual(bad.status, 400)
        self.cases.append({"label": "streaming 400", "path": ST, "method": "get", "status": "400",
                           "instance": json.loads(bad.body), "headers": bad.headers})
        bad.close()
        bad = MastoStream(self.paris.port, f"{ST}/user")
        self.assertEqual(bad.status, 401)
        self.cases.append({"label": "streaming 401", "path": f"{ST}/user", "method": "get",
                           "status": "401", "instance": json.loads(bad.body),
                           "headers": bad.headers})
        bad.close()
        streams = [MastoStream(self.paris.port, f"{ST}/user?access_token={ta}"),
                   MastoStream(self.paris.port, f"{ST}?stream=user&access_token={ta}")]
        try:
            for st, path in zip(streams, (f"{ST}/user", ST)):
                self.assertEqual(st.status, 200)
                self.assertEqual(st.headers["content-type"], "text/event-stream")
                self.cases.append({"label": f"{path} 200", "path": path, "method": "get",
                                   "status": "200", "content_type": "text/event-stream",
                                   "instance": "", "headers": st.headers})
            wait_for(lambda: all(":)" in st.comments for st in streams), 10, what="hello comments")
            live = V("POST", S, status({"status": "en direct"}), 200)
            V("POST", S, status({"status": "@ma_ann encore", "visibility": "direct"}), 200)
            # Deleted only once it reached ann's home: a post deleted before
            # its fan-out gets there never shows, so it has no update event.
            for st in streams:
                wait_for(lambda: st.of("update") and st.of("conversation"), 20,
                         what="update and conversation events")
            gone = V("DELETE", "/api/v1/statuses/{id}", p.delete(f"{S}/{live['id']}", token=tb),
                     200)
            self.assertEqual(gone["text"], "en direct")
            for st in streams:
                wait_for(lambda: st.of("delete"), 20, what="delete events")
                # A heartbeat is one comment per 15 s idle, not a buffer full of them.
                self.assertLessEqual(st.comments.count(":thump"), 3, st.comments[:8])
                for d in st.of("update"):
                    self.schema_case("MastoStatus", json.loads(d), "stream update")
                for d in st.of("conversation"):
                    self.schema_case("MastoConversation", json.loads(d), "stream conversation")
                self.assertIn(live["id"], st.of("delete"))
                for d in st.of("delete"):
                    self.schema_case("MastoStatusId", d, "stream delete (a bare id)")
        finally:
            for st in streams:
                st.close()

        # Deleting: only one's own posts; a direct status is not a post.
        D = "/api/v1/statuses/{id}"
        V("DELETE", D, p.delete(f"{S}/{s1['id']}", token=ta), 404)
        V("DELETE", D, p.delete(f"{S}/{s1['id']}"), 401)
        V("DELETE", D, p.delete(f"{S}/{s1['id']}", token=tb), 200)
        V("DELETE", D, p.delete(f"{S}/{s1['id']}", token=tb), 404)
        V("DELETE", D, p.delete(f"{S}/{dm['id']}", token=tb), 404)
        V("DELETE", D, p.delete(f"{S}/junk", token=tb), 404)
        V("GET", "/api/v1/statuses/{id}", p.get(f"{S}/{s1['id']}"), 404)
        rel = V("POST", "/api/v1/accounts/{id}/unfollow",
                p.post(f"/api/v1/accounts/{B}/unfollow", token=ta), 200)
        self.assertFalse(rel["following"])
        V("POST", "/api/v1/accounts/{id}/unfollow", p.post(f"/api/v1/accounts/{B}/unfollow"), 401)

        # Unknown paths under /api/ answer Mastodon's error shape too.
        r = p.get("/api/v1/notifications")
        self.assertEqual(r.status, 404)
        self.schema_case("MastoError", r.json, "unknown /api/ path")
        self.check_cases()

    def test_oauth_answers_match_document(self):
        """The OAuth flow apps follow, and its errors; an OAuth token's
        scopes hold on the Mastodon routes (403)."""
        p = self.paris.client
        V = self.validate
        ann = V("POST", "/v1/users", p.post("/v1/users", {"name": "oa_ann"}), 201)
        ta = ann["token"]

        app = V("POST", "/api/v1/apps", p.post("/api/v1/apps", {
            "client_name": "Test app", "redirect_uris": OOB, "scopes": "read write follow",
            "website": "https://example.org"}), 200)
        web = V("POST", "/api/v1/apps", p.post("/api/v1/apps", raw=form({
            "client_name": "Web app", "redirect_uris[]": ["http://127.0.0.1:9/cb", OOB],
            "scopes": "read"}), headers={"Content-Type": FORM}), 200)
        self.assertEqual(web["redirect_uris"], ["http://127.0.0.1:9/cb", OOB])
        A = "/api/v1/apps"
        V("POST", A, p.post(A, {"redirect_uris": OOB}), 422)
        V("POST", A, p.post(A, {"client_name": "x", "redirect_uris": "ftp://x"}), 422)
        V("POST", A, p.post(A, {"client_name": "x", "redirect_uris": OOB, "scopes": "admin:all"}),
          422)
        V("POST", A, p.post(A, raw=b"client_name=x", headers={"Content-Type": "text/plain"}), 415)
        V("POST", A, p.post(A, raw=b"[1]", headers={"Content-Type": "application/json"}), 400)
        AV = "/api/v1/apps/verify_credentials"
        V("GET", AV, p.get(AV, token=ta), 401)
        V("GET", AV, p.get(AV), 401)

        # The sign-in page, and its refusals (HTML, never a redirect).
        AZ = "/oauth/authorize"
        q = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": OOB,
             "scope": "read write follow"}
        V("GET", AZ, p.get(AZ + "?" + urllib.parse.urlencode(q)), 200)
        V("GET", AZ, p.get(AZ + "?" + urllib.parse.urlencode({**q, "client_id": "nope"})), 400)
        V("GET", AZ, p.get(AZ + "?" + urllib.parse.urlencode({**q, "scope": "push"})), 400)
        V("GET", AZ, p.get(AZ + "?" + urllib.parse.urlencode({**q, "response_type": "token"})),
          400)

        def authorize(fields, status):
            return V("POST", AZ, p.post(AZ, raw=form(fields), headers={"Content-Type": FORM}),
                     status)

        def code_of(page):
            m = re.search(r'<code id="code">([^<]+)</code>', page)
            self.assertTrue(m, page[:500])
            return html.unescape(m.group(1))

        code = code_of(authorize({**q, "token": ta}, 200))
        authorize({**q, "token": "oa_ann@paris." + "A" * 43}, 401)
        authorize(q, 400)
        authorize({**q, "redirect_uri": "http://elsewhere/cb", "token": ta}, 400)
        authorize({**q, "name": "oa_ann"}, 409)
        authorize({**q, "name": "Bad Name"}, 400)
        new_code = code_of(authorize({**q, "name": "oa_newbie", "display_name": "New"}, 200))
        V("POST", AZ, p.post(AZ, raw=b"x", headers={"Content-Type": "text/plain"}), 415)
        V("POST", AZ, p.post(AZ, raw=b"client_id=%zz", headers={"Content-Type": FORM}), 400)

        # Codes for tokens.
        T = "/oauth/token"
        grant = {"grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
                 "client_secret": app["client_secret"], "redirect_uri": OOB}
        first = V("POST", T, p.post(T, raw=form(grant), headers={"Content-Type": FORM}), 200)
        self.assertEqual(first["token_type"], "Bearer")
        V("POST", T, p.post(T, raw=form(grant), headers={"Content-Type": FORM}), 400)  # used
        # ... which revokes the token the code got (RFC 6749 4.1.2).
        V("GET", "/api/v1/accounts/verify_credentials",
          p.get("/api/v1/accounts/verify_credentials", token=first["access_token"]), 401)
        grant["code"] = code_of(authorize({**q, "token": ta}, 200))
        tok = V("POST", T, p.post(T, grant), 200)
        V("POST", T, p.post(T, {**grant, "code": new_code, "client_secret": "x" * 43}), 401)
        V("POST", T, p.post(T, {**grant, "grant_type": "password"}), 400)
        V("POST", T, p.post(T, {"client_id": app["client_id"]}), 400)
        V("POST", T, p.post(T, {**grant, "code": "nope"}), 400)
        V("POST", T, p.post(T, raw=b"x", headers={"Content-Type": "text/plain"}), 415)
        basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
        newbie = V("POST", T, p.post(T, {"grant_type": "authorization_code", "code": new_code,
                                         "redirect_uri": OOB},
                                     headers={"Authorization": "Basic " + basic}), 200)
        self.assertTrue(newbie["access_token"].startswith("oa_newbie@paris."))
        me = V("GET", "/api/v1/accounts/verify_credentials",
               p.get("/api/v1/accounts/verify_credentials", token=tok["access_token"]), 200)
        self.assertEqual(me["id"], ann["id"])
        self.assertEqual(V("GET", AV, p.get(AV, token=tok["access_token"]), 200)["name"],
                         "Test app")

        # PKCE, a public client, a redirect back to the app, a read-only token.
        verifier = "v" * 50
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        wq = {"response_type": "code", "client_id": web["client_id"],
              "redirect_uri": "http://127.0.0.1:9/cb", "scope": "read", "state": "s t",
              "code_challenge": challenge, "code_challenge_method": "S256", "token": ta}
        r = p.post(AZ, raw=form(wq), headers={"Content-Type": FORM})
        V("POST", AZ, r, 302)
        loc = urllib.parse.urlsplit(r.headers["location"])
        self.assertEqual(urllib.parse.parse_qs(loc.query)["state"], ["s t"])
        wcode = urllib.parse.parse_qs(loc.query)["code"][0]
        wgrant = {"grant_type": "authorization_code", "code": wcode, "client_id": web["client_id"],
                  "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": verifier}
        V("POST", T, p.post(T, {**wgrant, "code_verifier": "w" * 50}), 400)
        authorize({**wq, "code_challenge_method": "plain"}, 400)
        r = p.post(AZ, raw=form(wq), headers={"Content-Type": FORM})
        wgrant["code"] = urllib.parse.parse_qs(urllib.parse.urlsplit(
            r.headers["location"]).query)["code"][0]
        ro = V("POST", T, p.post(T, wgrant), 200)
        self.assertEqual(ro["scope"], "read")
        rt = ro["access_token"]
        V("GET", "/api/v1/timelines/home", p.get("/api/v1/timelines/home", token=rt), 200)
        V("POST", "/api/v1/statuses", p.post("/api/v1/statuses", {"status": "x"}, token=rt), 403)
        V("POST", "/api/v1/accounts/{id}/follow",
          p.post(f"/api/v1/accounts/{ann['id']}/follow", token=rt), 403)
        V("DELETE", "/api/v1/statuses/{id}",
          p.delete(f"/api/v1/statuses/{'0' * 20}{'12' * 32}", token=rt), 403)

        # client_credentials: an app token, for no account.
        cc = {"grant_type": "client_credentials", "client_id": app["client_id"],
              "client_secret": app["client_secret"], "scope": "read"}
        at = V("POST", T, p.post(T, cc), 200)
        self.assertTrue(at["access_token"].startswith("~app."))
        V("POST", T, p.post(T, {**cc, "scope": "admin:read"}), 400)
        V("POST", T, p.post(T, {**cc, "client_secret": None}), 401)
        V("GET", AV, p.get(AV, token=at["access_token"]), 200)
        V("GET", "/api/v1/accounts/verify_credentials",
          p.get("/api/v1/accounts/verify_credentials", token=at["access_token"]), 401)

        # Revocation.
        RV = "/oauth/revoke"
        rv = {"client_id": web["client_id"], "client_secret": web["client_secret"], "token": rt}
        V("POST", RV, p.post(RV, {**rv, "client_secret": "x"}), 401)
        V("POST", RV, p.post(RV, {k: v for k, v in rv.items() if k != "token"}), 400)
        V("POST", RV, p.post(RV, {**rv, "token": tok["access_token"]}), 403)
        V("POST", RV, p.post(RV, raw=form(rv), headers={"Content-Type": FORM}), 200)
        V("POST", RV, p.post(RV, rv), 200)  # again: nothing to do
        V("GET", "/api/v1/timelines/home", p.get("/api/v1/timelines/home", token=rt), 401)
        V("POST", RV, p.post(RV, raw=b"x", headers={"Content-Type": "text/plain"}), 415)

        r = p.get("/oauth/nowhere")
        self.assertEqual(r.status, 404)
        self.schema_case("OAuthError", r.json, "unknown /oauth/ path")
        self.check_cases()


if __name__ == "__main__":
    unittest.main()
