"""test_openapi.py -- web/openapi.json against the code and a real cluster.

The document is served at /openapi.json; its (method, path) set is exactly
the route table of api/router.c (less the two static routes, plus the
document itself); and real answers of a two-region cluster -- successes
and errors -- validate against the schema the document gives for their
route and status, with a small JSON-Schema validator (the subset the
document uses) that is itself checked to reject a wrong instance.
"""
import json
import os
import re
import unittest

from harness import ROOT, Cluster, wait_for
from test_log_auth import stop_checked

DOC_PATH = os.path.join(ROOT, "web", "openapi.json")
ROUTER_C = os.path.join(ROOT, "api", "router.c")
ROUTE_RE = re.compile(r'\{\s*API_([A-Z]+)\s*,\s*"([^"]*)"\s*,\s*"([^"]*)"\s*,\s*(\w+)\s*\}')
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


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


# ---- a JSON-Schema subset -----------------------------------------------------------------------

class SchemaError(AssertionError):
    pass


def _type_ok(t, v):
    if t == "null":
        return v is None
    if t == "boolean":
        return isinstance(v, bool)
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "string":
        return isinstance(v, str)
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    raise SchemaError(f"unknown type {t!r} in schema")


class Validator:
    """type (a name or a list), properties, required, additionalProperties
    (bool or schema), items, enum, minimum/maximum, minLength/maxLength,
    pattern, anyOf, and $ref into #/components/schemas."""

    def __init__(self, doc):
        self.doc = doc

    def resolve(self, ref):
        if not ref.startswith("#/components/"):
            raise SchemaError(f"unsupported $ref {ref}")
        node = self.doc
        for part in ref[2:].split("/"):
            node = node[part]
        return node

    def errors(self, schema, v, where="$"):
        if "$ref" in schema:
            return self.errors(self.resolve(schema["$ref"]), v, where)
        errs = []
        if "anyOf" in schema:
            alts = [self.errors(s, v, where) for s in schema["anyOf"]]
            if all(alts):
                errs.append(f"{where}: matches no alternative of anyOf "
                            f"({'; '.join(a[0] for a in alts)})")
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_type_ok(t, v) for t in types):
                return errs + [f"{where}: {json.dumps(v)[:80]} is not of type {types}"]
        if "enum" in schema and v not in schema["enum"]:
            errs.append(f"{where}: {v!r} is not one of {schema['enum']}")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if "minimum" in schema and v < schema["minimum"]:
                errs.append(f"{where}: {v} < minimum {schema['minimum']}")
            if "maximum" in schema and v > schema["maximum"]:
                errs.append(f"{where}: {v} > maximum {schema['maximum']}")
        if isinstance(v, str):
            if "minLength" in schema and len(v) < schema["minLength"]:
                errs.append(f"{where}: {v!r} shorter than {schema['minLength']}")
            if "maxLength" in schema and len(v) > schema["maxLength"]:
                errs.append(f"{where}: string longer than {schema['maxLength']}")
            if "pattern" in schema and not re.search(schema["pattern"], v):
                errs.append(f"{where}: {v!r} does not match {schema['pattern']}")
        if isinstance(v, dict):
            props = schema.get("properties", {})
            for k in schema.get("required", []):
                if k not in v:
                    errs.append(f"{where}: required property {k!r} missing")
            extra = schema.get("additionalProperties", True)
            for k, item in v.items():
                if k in props:
                    errs += self.errors(props[k], item, f"{where}.{k}")
                elif extra is False:
                    errs.append(f"{where}: property {k!r} is not in the schema")
                elif isinstance(extra, dict):
                    errs += self.errors(extra, item, f"{where}.{k}")
        if isinstance(v, list) and "items" in schema:
            for i, item in enumerate(v):
                errs += self.errors(schema["items"], item, f"{where}[{i}]")
        return errs

    def check(self, schema, v):
        errs = self.errors(schema, v)
        if errs:
            raise SchemaError("\n".join(errs))


# ---- the tests ---------------------------------------------------------------------------------

def load_doc():
    with open(DOC_PATH) as f:
        return json.load(f)


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
                v = Validator(doc)
                declared = [p for p in (v.resolve(p["$ref"]) if "$ref" in p else p
                                        for p in o.get("parameters", [])) if p["in"] == "path"]
                self.assertEqual(sorted(p["name"] for p in declared), sorted(names),
                                 f"{m.upper()} {template}")
                self.assertTrue(all(p.get("required") for p in declared), template)

    def test_refs_resolve(self):
        doc = load_doc()
        v = Validator(doc)

        def walk(node):
            if isinstance(node, dict):
                for k, x in node.items():
                    if k == "$ref":
                        v.resolve(x)
                    else:
                        walk(x)
            elif isinstance(node, list):
                for x in node:
                    walk(x)
        walk(doc)

    def test_validator_rejects_wrong_instances(self):
        doc = load_doc()
        v = Validator(doc)
        post = {"$ref": "#/components/schemas/Post"}
        good = {"id": "0001234567890abc-paris", "author": "a@paris", "text": "hi",
                "created_at": "2026-01-02T03:04:05.678Z", "region": "paris"}
        v.check(post, good)
        for bad in ({**good, "text": 5},                                 # wrong type
                    {k: x for k, x in good.items() if k != "author"},    # required missing
                    {**good, "extra": 1},                                 # additionalProperties
                    {**good, "created_at": "yesterday"}):                 # pattern
            with self.assertRaises(SchemaError, msg=bad):
                v.check(post, bad)
        with self.assertRaises(SchemaError):                              # maxLength
            v.check({"$ref": "#/components/schemas/NewPost"}, {"text": "x" * 501})
        with self.assertRaises(SchemaError):
            v.check({"$ref": "#/components/schemas/Region"},
                    {"region": "paris", "peers": [], "hlc": 123, "replicating": True})
        with self.assertRaises(SchemaError):
            v.check({"$ref": "#/components/schemas/UserIdPage"}, {"items": [1], "next": None})
        with self.assertRaises(SchemaError):
            v.check({"type": "integer", "minimum": 1, "maximum": 100}, 0)
        with self.assertRaises(SchemaError):
            v.check({"type": "string", "enum": ["local"]}, "most")
        v.check({"type": ["string", "null"]}, None)


class LiveTest(unittest.TestCase):
    """Real answers of a real two-region cluster against the document."""

    @classmethod
    def setUpClass(cls):
        cls.doc = load_doc()
        cls.v = Validator(cls.doc)
        cls.c = Cluster(names=("paris", "tokyo"), args=["--demo", "--rate-limit", "0"])
        cls.paris, cls.tokyo = cls.c["paris"], cls.c["tokyo"]

    @classmethod
    def tearDownClass(cls):
        stop_checked(cls.c)

    def response_spec(self, method, template, status):
        op = self.doc["paths"][template][method.lower()]
        spec = op["responses"].get(str(status))
        self.assertIsNotNone(spec, f"{method} {template}: status {status} is not documented")
        while "$ref" in spec:
            spec = self.v.resolve(spec["$ref"])
        return spec

    def validate(self, method, template, r, status=None):
        """r's body against the document's schema for template and r.status."""
        if status is not None:
            self.assertIn(r.status, status if isinstance(status, tuple) else (status,), r)
        spec = self.response_spec(method, template, r.status)
        content = spec.get("content")
        if not content:
            self.assertEqual(r.body, "", f"{method} {template} {r.status}: body not documented")
            return None
        ctype = r.headers.get("content-type", "").split(";")[0].strip()
        self.assertIn(ctype, content, f"{method} {template} {r.status}: {ctype} not documented")
        if ctype != "application/json":
            return None
        body = r.json
        try:
            self.v.check(content[ctype]["schema"], body)
        except SchemaError as e:
            self.fail(f"{method} {template} {r.status}: {e}\nbody: {r.body[:500]}")
        for h in spec.get("headers", {}):
            if h in ("Session-Token",) and method != "GET":
                self.assertIn(h.lower(), r.headers, f"{method} {template}: no {h}")
        return body

    def test_openapi_served(self):
        r = self.paris.client.get("/openapi.json")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), "application/json")
        self.assertEqual(r.json["openapi"], "3.1.0")
        self.assertEqual(r.json, self.doc)
        self.validate("GET", "/openapi.json", r)

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


if __name__ == "__main__":
    unittest.main()
