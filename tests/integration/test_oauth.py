"""test_oauth.py -- OAuth 2 as Mastodon apps use it, against real regions
replicating through a real Redis.

An app registers (POST /api/v1/apps), a user signs in on the
/oauth/authorize page with their account token (or makes an account
there), the browser is sent back with a code, and the app trades it for a
token with PKCE (S256). The token carries the scopes granted: a read-only
one is refused by /v1 writes. Codes work once (a second use also revokes
the token of the first), only with the verifier, the client and the
redirect URI they were issued for. Tokens are MACed with a region secret:
one changed character, a token of another region, or a revoked one is a
401, and the secret survives a restart. client_credentials gives an app
token that acts for no account. Hostile input (huge or non-UTF-8 fields,
markup in names and state) is refused or echoed escaped.
"""
import base64
import hashlib
import json
import os
import unittest
import urllib.parse

from harness import Cluster, wait_for

REDIRECT = "https://app.example/callback"


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def pkce():
    verifier = b64(os.urandom(32))
    return verifier, b64(hashlib.sha256(verifier.encode()).digest())


def flip(tok, pos):
    """tok with the base64url character at pos (from the end of the token) changed."""
    i = len(tok) - pos
    c = tok[i]
    return tok[:i] + ("A" if c != "A" else "B") + tok[i + 1:]


class OAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(names=("paris", "newyork"), args=["--rate-limit", "0"])
        cls.paris = cls.cluster["paris"].client
        cls.newyork = cls.cluster["newyork"].client
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    # ---- helpers ---------------------------------------------------------------------------

    def name(self, prefix="u"):
        OAuthTest.n += 1
        return f"{prefix}{OAuthTest.n}"

    def form(self, path, fields, client=None, headers=None):
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        hdrs.update(headers or {})
        return (client or self.paris).request("POST", path, headers=hdrs,
                                              raw=urllib.parse.urlencode(fields).encode())

    def app(self, redirect_uris=REDIRECT, scopes="read write follow push", client=None):
        r = (client or self.paris).post("/api/v1/apps", {
            "client_name": "Test app", "redirect_uris": redirect_uris, "scopes": scopes,
            "website": "https://app.example"})
        self.assertEqual(r.status, 200, r)
        return r.json

    def params(self, app, scope="read write follow", state="xyz", challenge=None,
               redirect=REDIRECT, **extra):
        p = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": redirect,
             "scope": scope}
        if state is not None:
            p["state"] = state
        if challenge:
            p.update(code_challenge=challenge, code_challenge_method="S256")
        p.update(extra)
        return p

    def code(self, app, token, **kw):
        """Signs in on the authorize page with an account token; returns the code."""
        p = self.params(app, **kw)
        r = self.form("/oauth/authorize", dict(p, token=token))
        self.assertEqual(r.status, 302, r)
        loc = urllib.parse.urlsplit(r.headers["location"])
        q = urllib.parse.parse_qs(loc.query)
        if p.get("state") is not None:
            self.assertEqual(q["state"], [p["state"]])
        return q["code"][0]

    def exchange(self, app, code, verifier=None, secret=True, redirect=REDIRECT):
        f = {"grant_type": "authorization_code", "client_id": app["client_id"], "code": code,
             "redirect_uri": redirect}
        if secret:
            f["client_secret"] = app["client_secret"]
        if verifier:
            f["code_verifier"] = verifier
        return self.form("/oauth/token", f)

    def user(self, client=None):
        return (client or self.paris).register(self.name())

    def oauth_token(self, scope="read write follow", user=None, app=None):
        user = user or self.user()
        app = app or self.app()
        verifier, challenge = pkce()
        code = self.code(app, user["token"], scope=scope, challenge=challenge)
        r = self.exchange(app, code, verifier)
        self.assertEqual(r.status, 200, r)
        return r.json["access_token"], user, app

    # ---- apps ------------------------------------------------------------------------------

    def test_app_entity(self):
        r = self.paris.post("/api/v1/apps", {
            "client_name": "Elk-ish", "redirect_uris": ["https://a.example/cb", "http://127.0.0.1:9/x?y=1"],
            "scopes": "read write:statuses"})
        self.assertEqual(r.status, 200, r)
        a = r.json
        self.assertEqual(a["name"], "Elk-ish")
        self.assertIsNone(a["website"])
        self.assertEqual(a["scopes"], ["read", "write:statuses"])
        self.assertEqual(a["redirect_uris"], ["https://a.example/cb", "http://127.0.0.1:9/x?y=1"])
        self.assertEqual(a["redirect_uri"], "https://a.example/cb\nhttp://127.0.0.1:9/x?y=1")
        self.assertEqual(a["client_secret_expires_at"], 0)
        self.assertEqual(a["vapid_key"], "")
        self.assertEqual(len(a["client_id"]), 43)
        self.assertEqual(len(a["client_secret"]), 43)
        self.assertIsInstance(a["id"], str)
        # A form body, several URIs in one string, the default scope.
        r = self.form("/api/v1/apps", {"client_name": "Form app",
                                       "redirect_uris": "https://b.example/1\n https://b.example/2"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["scopes"], ["read"])
        self.assertEqual(r.json["redirect_uris"], ["https://b.example/1", "https://b.example/2"])

    def test_app_validation(self):
        bad = [
            {"redirect_uris": REDIRECT},  # no name
            {"client_name": "   ", "redirect_uris": REDIRECT},
            {"client_name": "x" * 61, "redirect_uris": REDIRECT},
            {"client_name": "two\nlines", "redirect_uris": REDIRECT},
            {"client_name": "x"},  # no redirect URI
            {"client_name": "x", "redirect_uris": "  \n "},
            {"client_name": "x", "redirect_uris": "https://a.example/cb#frag"},
            {"client_name": "x", "redirect_uris": "https://evil@a.example/cb"},
            {"client_name": "x", "redirect_uris": "javascript:alert(1)"},
            {"client_name": "x", "redirect_uris": "JavaScript:alert(1)"},
            {"client_name": "x", "redirect_uris": "data:text/html,x"},
            {"client_name": "x", "redirect_uris": "file:///etc/passwd"},
            {"client_name": "x", "redirect_uris": "com.example.app:"},
            {"client_name": "x", "redirect_uris": "com.example.app:/cb#f"},
            {"client_name": "x", "redirect_uris": "/relative"},
            {"client_name": "x", "redirect_uris": "https://a.example:99999/"},
            {"client_name": "x", "redirect_uris": "https://a.example/\u00e9"},
            {"client_name": "x", "redirect_uris": "https://a.example/" + "a" * 2000},
            {"client_name": "x", "redirect_uris": [f"https://a.example/{i}" for i in range(17)]},
            {"client_name": "x", "redirect_uris": REDIRECT, "scopes": "read admin:read"},
            {"client_name": "x", "redirect_uris": REDIRECT, "scopes": "reading"},
            {"client_name": "x", "redirect_uris": REDIRECT, "website": "javascript:x"},
        ]
        for body in bad:
            r = self.paris.post("/api/v1/apps", body)
            self.assertEqual(r.status, 422, (body, r))
            self.assertIn("error", r.json)
        # CR LF in a form value cannot reach a header.
        r = self.form("/api/v1/apps", {"client_name": "x",
                                       "redirect_uris": "https://a.example/\r\nSet-Cookie: a=b"})
        self.assertEqual(r.status, 422, r)

    def test_verify_credentials(self):
        tok, _, app = self.oauth_token()
        r = self.paris.get("/api/v1/apps/verify_credentials", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["name"], "Test app")
        self.assertEqual(r.json["website"], "https://app.example")
        self.assertEqual(r.json["redirect_uris"], [REDIRECT])
        self.assertNotIn("client_secret", r.json)
        user = self.user()
        self.assertEqual(self.paris.get("/api/v1/apps/verify_credentials",
                                        token=user["token"]).status, 401)
        self.assertEqual(self.paris.get("/api/v1/apps/verify_credentials").status, 401)

    # ---- the code flow --------------------------------------------------------------------

    def test_code_flow_with_pkce(self):
        user, app = self.user(), self.app()
        verifier, challenge = pkce()
        p = self.params(app, state="s t&a=te/\u00e9", challenge=challenge)
        page = self.paris.get("/oauth/authorize?" + urllib.parse.urlencode(p))
        self.assertEqual(page.status, 200, page)
        self.assertTrue(page.headers["content-type"].startswith("text/html"))
        csp = page.headers["content-security-policy"]
        self.assertIn("default-src 'none'", csp)
        self.assertIn("form-action 'self' https://app.example;", csp)
        self.assertEqual(page.headers["x-frame-options"], "DENY")
        self.assertEqual(page.headers["cache-control"], "no-store")
        self.assertIn('name="token"', page.body)
        self.assertIn('type="password"', page.body)
        self.assertIn(f'value="{challenge}"', page.body)
        code = self.code(app, user["token"], state=p["state"], challenge=challenge)
        self.assertEqual(len(code), 43)
        # A public client: no secret, the verifier instead.
        r = self.exchange(app, code, verifier, secret=False)
        self.assertEqual(r.status, 200, r)
        t = r.json
        self.assertEqual(t["token_type"], "Bearer")
        self.assertEqual(t["scope"], "read write follow")
        self.assertIsInstance(t["created_at"], int)
        self.assertEqual(r.headers["cache-control"], "no-store")
        tok = t["access_token"]
        self.assertTrue(tok.startswith(user["id"] + "."))
        self.assertEqual(len(tok.split(".")[-1]), 43)
        self.assertEqual(self.paris.get("/v1/timeline", token=tok).status, 200)
        post = self.paris.post_text(tok, "via oauth")
        self.assertEqual(post["author"], user["id"])
        self.assertEqual(self.paris.delete(f"/v1/posts/{post['id']}", token=tok).status, 204)

    def test_native_app_scheme(self):
        """A mobile app's own scheme (RFC 8252), as Tusky and Ivory register."""
        user = self.user()
        uri = "com.example.app:/oauth?x=1"
        app = self.app(redirect_uris=uri)
        page = self.paris.get("/oauth/authorize?" + urllib.parse.urlencode(
            self.params(app, redirect=uri, state=None)))
        self.assertEqual(page.status, 200, page)
        self.assertIn("form-action 'self' com.example.app:", page.headers["content-security-policy"])
        r = self.form("/oauth/authorize", dict(self.params(app, redirect=uri, state=None),
                                               token=user["token"]))
        self.assertEqual(r.status, 302, r)
        self.assertRegex(r.headers["location"],
                         r"^com\.example\.app:/oauth\?x=1&code=[A-Za-z0-9_-]{43}$")

    def test_redirect_with_query(self):
        user = self.user()
        app = self.app(redirect_uris="https://app.example/cb?from=df")
        r = self.form("/oauth/authorize", dict(self.params(app, redirect="https://app.example/cb?from=df",
                                                           state=None), token=user["token"]))
        self.assertEqual(r.status, 302, r)
        self.assertRegex(r.headers["location"], r"^https://app\.example/cb\?from=df&code=[A-Za-z0-9_-]{43}$")

    def test_code_errors(self):
        user, app = self.user(), self.app()
        verifier, challenge = pkce()
        # A wrong verifier, or none.
        code = self.code(app, user["token"], challenge=challenge)
        r = self.exchange(app, code, pkce()[0], secret=False)
        self.assertEqual((r.status, r.json["error"]), (400, "invalid_grant"), r)
        # The code is spent by that attempt.
        self.assertEqual(self.exchange(app, code, verifier).json["error"], "invalid_grant")
        code = self.code(app, user["token"], challenge=challenge)
        self.assertEqual(self.exchange(app, code, None).json["error"], "invalid_grant")
        # A redirect URI other than the authorized one.
        code = self.code(app, user["token"], challenge=challenge)
        r = self.exchange(app, code, verifier, redirect="https://app.example/other")
        self.assertEqual((r.status, r.json["error"]), (400, "invalid_grant"), r)
        # Another client's code.
        other = self.app()
        code = self.code(app, user["token"])
        r = self.form("/oauth/token", {"grant_type": "authorization_code", "code": code,
                                       "client_id": other["client_id"],
                                       "client_secret": other["client_secret"],
                                       "redirect_uri": REDIRECT})
        self.assertEqual(r.json["error"], "invalid_grant", r)
        # No challenge and no secret: the client must authenticate.
        code = self.code(app, user["token"])
        r = self.exchange(app, code, secret=False)
        self.assertEqual((r.status, r.json["error"]), (401, "invalid_client"), r)
        # A wrong secret.
        code = self.code(app, user["token"])
        r = self.form("/oauth/token", {"grant_type": "authorization_code", "code": code,
                                       "client_id": app["client_id"], "client_secret": "x" * 43,
                                       "redirect_uri": REDIRECT})
        self.assertEqual((r.status, r.json["error"]), (401, "invalid_client"), r)
        # Made-up codes.
        for c in ["", "x", "A" * 43, "A" * 500]:
            r = self.exchange(app, c)
            self.assertEqual(r.status, 400, r)
        r = self.form("/oauth/token", {"grant_type": "password", "client_id": app["client_id"]})
        self.assertEqual((r.status, r.json["error"]), (400, "unsupported_grant_type"), r)
        r = self.form("/oauth/token", {"client_id": app["client_id"]})
        self.assertEqual((r.status, r.json["error"]), (400, "invalid_request"), r)

    def test_reused_code_revokes_its_token(self):
        user, app = self.user(), self.app()
        verifier, challenge = pkce()
        code = self.code(app, user["token"], challenge=challenge)
        first = self.exchange(app, code, verifier)
        self.assertEqual(first.status, 200, first)
        tok = first.json["access_token"]
        self.assertEqual(self.paris.get("/v1/timeline", token=tok).status, 200)
        again = self.exchange(app, code, verifier)
        self.assertEqual((again.status, again.json["error"]), (400, "invalid_grant"), again)
        self.assertEqual(self.paris.get("/v1/timeline", token=tok).status, 401)

    def test_authorize_parameter_errors(self):
        app = self.app(scopes="read write")
        base = self.params(app, scope="read")
        bad = [
            dict(base, client_id="A" * 43),
            dict(base, client_id=""),
            dict(base, redirect_uri="https://evil.example/callback"),
            dict(base, redirect_uri=REDIRECT + "/"),
            dict(base, scope="read follow"),
            dict(base, scope="read nonsense"),
            dict(base, response_type="token"),
            {k: v for k, v in base.items() if k != "response_type"},
            dict(base, code_challenge=pkce()[1], code_challenge_method="plain"),
            dict(base, code_challenge=pkce()[1][:40], code_challenge_method="S256"),
            dict(base, code_challenge_method="S256"),
            dict(base, state="s" * 1025),
        ]
        for p in bad:
            r = self.paris.get("/oauth/authorize?" + urllib.parse.urlencode(p))
            self.assertEqual(r.status, 400, (p, r))
            self.assertNotIn("location", r.headers)
            self.assertTrue(r.headers["content-type"].startswith("text/html"))
            r = self.form("/oauth/authorize", dict(p, token=self.user()["token"]))
            self.assertEqual(r.status, 400, (p, r))
            self.assertNotIn("location", r.headers)

    def test_wrong_account_token(self):
        user, app = self.user(), self.app()
        p = self.params(app)
        for tok in [flip(user["token"], 5), "nobody@paris." + "A" * 43, "garbage", "x" * 5000]:
            r = self.form("/oauth/authorize", dict(p, token=tok))
            self.assertEqual(r.status, 401, r)
            self.assertIn("not the token of an account", r.body)
            self.assertIn('name="token"', r.body)  # the form again
            self.assertNotIn("location", r.headers)
        # An OAuth token is not an account token: it cannot mint more.
        tok, _, _ = self.oauth_token(user=user)
        self.assertEqual(self.form("/oauth/authorize", dict(p, token=tok)).status, 401)
        r = self.form("/oauth/authorize", p)
        self.assertEqual(r.status, 400, r)

    def test_sign_up_on_the_page(self):
        app = self.app()
        verifier, challenge = pkce()
        name = self.name("new")
        r = self.form("/oauth/authorize", dict(self.params(app, challenge=challenge),
                                               name=name, display_name="New <b>one</b>"))
        self.assertEqual(r.status, 302, r)
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["location"]).query)["code"][0]
        t = self.exchange(app, code, verifier)
        self.assertEqual(t.status, 200, t)
        self.assertTrue(t.json["access_token"].startswith(f"{name}@paris."))
        u = self.paris.get(f"/v1/users/{name}@paris")
        self.assertEqual((u.status, u.json["display_name"]), (200, "New <b>one</b>"))
        self.assertEqual(self.paris.post_text(t.json["access_token"], "hello")["author"],
                         f"{name}@paris")
        # Taken, or not a name: the page again, the fields kept, escaped.
        r = self.form("/oauth/authorize", dict(self.params(app), name=name, display_name="<x>"))
        self.assertEqual(r.status, 409, r)
        self.assertIn("is taken", r.body)
        self.assertIn('value="&lt;x&gt;"', r.body)
        r = self.form("/oauth/authorize", dict(self.params(app), name="Not A Name"))
        self.assertEqual(r.status, 400, r)
        self.assertIn('name="token"', r.body)

    def test_out_of_band(self):
        user = self.user()
        app = self.app(redirect_uris="urn:ietf:wg:oauth:2.0:oob")
        p = self.params(app, redirect="urn:ietf:wg:oauth:2.0:oob")
        page = self.paris.get("/oauth/authorize?" + urllib.parse.urlencode(p))
        self.assertEqual(page.status, 200, page)
        self.assertIn("form-action 'self';", page.headers["content-security-policy"])
        r = self.form("/oauth/authorize", dict(p, token=user["token"]))
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("location", r.headers)
        start = r.body.index('<code id="code">') + len('<code id="code">')
        code = r.body[start:r.body.index("</code>", start)]
        t = self.exchange(app, code, redirect="urn:ietf:wg:oauth:2.0:oob")
        self.assertEqual(t.status, 200, t)
        # A sole registered URI may be left out of the authorize request.
        del p["redirect_uri"]
        self.assertEqual(self.paris.get("/oauth/authorize?" + urllib.parse.urlencode(p)).status, 200)

    # ---- tokens ------------------------------------------------------------------------------

    def test_forged_and_garbled_tokens(self):
        tok, user, _ = self.oauth_token()
        self.assertEqual(self.paris.get("/v1/timeline", token=tok).status, 200)
        uid, secret = tok.rsplit(".", 1)
        raw = base64.urlsafe_b64decode(secret + "=")
        forged = [
            flip(tok, 3),   # the MAC
            flip(tok, 30),  # the header: scopes, time, app, id
            uid + "." + secret[:-1],
            uid + "." + secret + "A",
            self.user()["id"] + "." + secret,  # another user's name on it
            "~app." + secret,
            uid + "." + b64(bytes([1, 7]) + b"\0" * 4 + raw[6:]),  # issued at 0, MAC unchanged
            uid + "." + b64(raw[:1] + bytes([raw[1] ^ 1]) + raw[2:]),  # other scopes
            uid + "." + "!" * 43,
            uid + "..." + secret,
            "Bearer " + tok,
        ]
        for f in forged:
            r = self.paris.get("/v1/timeline", token=f)
            self.assertEqual(r.status, 401, (f, r))
        # The account token still works, and is not the OAuth one.
        self.assertEqual(self.paris.get("/v1/timeline", token=user["token"]).status, 200)

    def test_scopes_are_enforced(self):
        reader, user, app = self.oauth_token(scope="read")
        target = self.user()
        post = self.paris.post_text(user["token"], "mine")
        self.assertEqual(self.paris.get("/v1/timeline", token=reader).status, 200)
        writes = [
            ("POST", "/v1/posts", {"text": "no"}),
            ("DELETE", f"/v1/posts/{post['id']}", None),
            ("PUT", f"/v1/following/{target['id']}", None),
            ("DELETE", f"/v1/following/{target['id']}", None),
            ("POST", "/v1/messages", {"to": target["id"], "text": "no"}),
        ]
        for method, path, body in writes:
            r = self.paris.request(method, path, body=body, token=reader)
            self.assertEqual(r.status, 403, (method, path, r))
            self.assertEqual(r.json["error"]["code"], "insufficient_scope")
        # follow alone may follow, not post; write:statuses may post (granular
        # scopes map onto read/write/follow, so it is a write token).
        follower, _, _ = self.oauth_token(scope="follow", user=user, app=app)
        self.assertEqual(self.paris.put(f"/v1/following/{target['id']}", token=follower).status, 200)
        self.assertEqual(self.paris.post("/v1/posts", {"text": "no"}, token=follower).status, 403)
        poster, _, _ = self.oauth_token(scope="write:statuses", user=user, app=app)
        self.assertEqual(self.paris.post("/v1/posts", {"text": "yes"}, token=poster).status, 201)
        # write:follows is a follow permission; granular names come back as asked.
        verifier, challenge = pkce()
        code = self.code(app, user["token"], scope="read:statuses write:follows push",
                         challenge=challenge)
        t = self.exchange(app, code, verifier)
        self.assertEqual(t.json["scope"], "push read:statuses write:follows")
        self.assertEqual(self.paris.put(f"/v1/following/{target['id']}",
                                        token=t.json["access_token"]).status, 200)
        # The account token keeps every scope.
        self.assertEqual(self.paris.post("/v1/posts", {"text": "all"}, token=user["token"]).status, 201)

    def test_revoke(self):
        tok, user, app = self.oauth_token()
        other = self.app()
        creds = {"client_id": app["client_id"], "client_secret": app["client_secret"]}
        r = self.form("/oauth/revoke", {"client_id": other["client_id"],
                                        "client_secret": other["client_secret"], "token": tok})
        self.assertEqual((r.status, r.json["error"]), (403, "unauthorized_client"), r)
        r = self.form("/oauth/revoke", {"client_id": app["client_id"], "client_secret": "no",
                                        "token": tok})
        self.assertEqual((r.status, r.json["error"]), (401, "invalid_client"), r)
        self.assertEqual(self.paris.get("/v1/timeline", token=tok).status, 200)
        r = self.form("/oauth/revoke", dict(creds, token=tok))
        self.assertEqual((r.status, r.json), (200, {}), r)
        self.assertEqual(self.paris.get("/v1/timeline", token=tok).status, 401)
        self.assertEqual(self.paris.get("/api/v1/apps/verify_credentials", token=tok).status, 401)
        # Again, or a token that is not one: nothing to do.
        self.assertEqual(self.form("/oauth/revoke", dict(creds, token=tok)).status, 200)
        self.assertEqual(self.form("/oauth/revoke", dict(creds, token="junk")).status, 200)
        # An account token cannot be revoked this way; it keeps working.
        self.assertEqual(self.form("/oauth/revoke", dict(creds, token=user["token"])).status, 200)
        self.assertEqual(self.paris.get("/v1/timeline", token=user["token"]).status, 200)

    def test_client_credentials(self):
        app = self.app(scopes="read write")
        r = self.form("/oauth/token", {"grant_type": "client_credentials",
                                       "client_id": app["client_id"],
                                       "client_secret": app["client_secret"], "scope": "read"})
        self.assertEqual(r.status, 200, r)
        tok = r.json["access_token"]
        self.assertTrue(tok.startswith("~app."))
        self.assertEqual(r.json["scope"], "read")
        v = self.paris.get("/api/v1/apps/verify_credentials", token=tok)
        self.assertEqual((v.status, v.json["scopes"]), (200, ["read", "write"]), v)
        # It acts for no account.
        r = self.paris.get("/v1/timeline", token=tok)
        self.assertEqual(r.status, 401, r)
        self.assertIn("app token", r.json["error"]["message"])
        # HTTP Basic client authentication, and a JSON body.
        basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
        r = self.paris.post("/oauth/token", {"grant_type": "client_credentials"},
                            headers={"Authorization": "Basic " + basic})
        self.assertEqual((r.status, r.json.get("scope")), (200, "read"), r)
        r = self.form("/oauth/token", {"grant_type": "client_credentials",
                                       "client_id": app["client_id"],
                                       "client_secret": app["client_secret"], "scope": "follow"})
        self.assertEqual((r.status, r.json["error"]), (400, "invalid_scope"), r)
        r = self.form("/oauth/token", {"grant_type": "client_credentials",
                                       "client_id": app["client_id"]})
        self.assertEqual((r.status, r.json["error"]), (401, "invalid_client"), r)
        self.assertIn("bearer", r.headers["www-authenticate"].lower())
        # Revocable like any other.
        self.form("/oauth/revoke", {"client_id": app["client_id"],
                                    "client_secret": app["client_secret"], "token": tok})
        self.assertEqual(self.paris.get("/api/v1/apps/verify_credentials", token=tok).status, 401)

    def test_tokens_belong_to_their_region(self):
        tok, user, _ = self.oauth_token()
        wait_for(lambda: self.newyork.get(f"/v1/users/{user['id']}").status == 200, 20,
                 what="the user in newyork")
        self.assertEqual(self.paris.get("/v1/timeline", token=tok).status, 200)
        r = self.newyork.get("/v1/timeline", token=tok)
        self.assertEqual(r.status, 401, r)
        for c in (self.paris, self.newyork):
            self.assertEqual(c.get("/v1/timeline", token=user["token"]).status, 200)
        # newyork's own OAuth works for the same (replicated) account, only there.
        app = self.app(client=self.newyork)
        verifier, challenge = pkce()
        p = self.params(app, challenge=challenge)
        r = self.form("/oauth/authorize", dict(p, token=user["token"]), client=self.newyork)
        self.assertEqual(r.status, 302, r)
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["location"]).query)["code"][0]
        # A code is its region's too.
        self.assertEqual(self.exchange(app, code, verifier).status, 401)  # paris knows no such app
        r = self.form("/oauth/token", {"grant_type": "authorization_code", "code": code,
                                       "client_id": app["client_id"], "redirect_uri": REDIRECT,
                                       "code_verifier": verifier}, client=self.newyork)
        self.assertEqual(r.status, 200, r)
        ny = r.json["access_token"]
        self.assertEqual(self.newyork.get("/v1/timeline", token=ny).status, 200)
        self.assertEqual(self.paris.get("/v1/timeline", token=ny).status, 401)

    def test_secret_survives_restart(self):
        tok, _, _ = self.oauth_token()
        self.cluster["paris"].restart()
        self.assertEqual(self.paris.get("/v1/timeline", token=tok).status, 200)
        self.assertEqual(self.paris.get("/api/v1/apps/verify_credentials", token=tok).status, 200)

    # ---- hostile input -----------------------------------------------------------------------

    def test_hostile_input(self):
        app = self.app()
        # Huge fields: past the body cap 413, else refused by length.
        r = self.paris.post("/api/v1/apps", {"client_name": "x" * 70000, "redirect_uris": REDIRECT})
        self.assertEqual(r.status, 413, r)
        r = self.paris.post("/api/v1/apps", {"client_name": "x" * 5000, "redirect_uris": REDIRECT})
        self.assertEqual(r.status, 422, r)
        q = urllib.parse.urlencode(self.params(app, state="s" * 20000))
        r = self.paris.get("/oauth/authorize?" + q)
        self.assertIn(r.status, (400, 414, 431), r)
        r = self.form("/oauth/token", {"grant_type": "authorization_code", "code": "c" * 60000,
                                       "client_id": app["client_id"]})
        self.assertEqual(r.status, 400, r)
        # Invalid UTF-8 in the query and in the body.
        q = urllib.parse.urlencode(self.params(app, state=None)) + "&state=%FF%FE"
        r = self.paris.get("/oauth/authorize?" + q)
        self.assertEqual(r.status, 400, r)
        r = self.paris.get("/oauth/authorize?" + urllib.parse.urlencode(self.params(app))
                           .replace("response_type=code", "response_type=co%C3de"))
        self.assertEqual(r.status, 400, r)
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        r = self.paris.request("POST", "/oauth/token", headers=hdrs,
                               raw=b"grant_type=client_credentials&client_id=%FF%FF")
        self.assertEqual(r.status, 400, r)
        r = self.paris.request("POST", "/api/v1/apps", headers={"Content-Type": "application/json"},
                               raw=b'{"client_name":"\xff","redirect_uris":"https://a.example/"}')
        self.assertEqual(r.status, 400, r)
        r = self.paris.request("POST", "/api/v1/apps", headers=hdrs,
                               raw=b"client_name=a%00b&redirect_uris=https://a.example/")
        self.assertEqual(r.status, 400, r)
        # Markup in the app's name and in state comes back escaped.
        evil = self.paris.post("/api/v1/apps", {
            "client_name": "<script>alert(1)</script>", "redirect_uris": REDIRECT,
            "website": "https://app.example/?a=\"><script>"})
        self.assertEqual(evil.status, 422, evil)  # '"' '<' '>' are not URL characters
        evil = self.paris.post("/api/v1/apps", {
            "client_name": "<script>alert(1)</script>", "redirect_uris": REDIRECT,
            "scopes": "read"}).json
        state = '"><script>alert(2)</script>&\''
        p = self.params(evil, scope="read", state=state)
        page = self.paris.get("/oauth/authorize?" + urllib.parse.urlencode(p))
        self.assertEqual(page.status, 200, page)
        self.assertNotIn("<script>", page.body)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page.body)
        self.assertIn('value="&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;&amp;&#39;"', page.body)
        user = self.user()
        code = self.code(evil, user["token"], scope="read", state=state)
        self.assertEqual(len(code), 43)
        r = self.form("/oauth/authorize", dict(p, token=flip(user["token"], 4)))
        self.assertEqual(r.status, 401, r)
        self.assertNotIn("<script>", r.body)
        # JSON errors stay JSON, whatever the bytes.
        r = self.paris.request("POST", "/oauth/token", headers={"Content-Type": "text/plain"},
                               raw=b"\xff")
        self.assertEqual(r.status, 415, r)
        self.assertIn("error", json.loads(r.body))


if __name__ == "__main__":
    unittest.main()
