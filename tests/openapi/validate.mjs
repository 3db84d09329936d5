// validate.mjs -- instances against the schemas of an OpenAPI 3.1 document, with Ajv.
//
//   node validate.mjs <openapi.json> <cases.json>
//
// OpenAPI 3.1 schemas are JSON Schema 2020-12 (plus a few annotation
// keywords of OpenAPI's own, registered here so that strict mode takes
// them), so the document's schemas are compiled by Ajv's 2020 draft as
// they stand, every one of components.schemas first (a schema Ajv cannot
// compile is a failure of its own). cases.json is an array of cases:
//
//   {"label": "...", "ref": "#/components/schemas/X", "instance": ...}
//   {"label": "...", "path": "/v1/users", "method": "post", "status": 201,
//    "content_type": "application/json", "instance": ..., "headers": {...}}
//   either with "valid": false: the instance must be rejected (checks that
//   the schema does reject what it should)
//
// A path case validates the instance against the schema of that
// response's content type (following $refs to components.responses), and
// each header the response documents and the answer has against the
// header's schema. Prints each failure; exits 1 if there was one, 2 if
// the input could not be read.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [docPath, casesPath] = process.argv.slice(2);
if (!docPath || !casesPath) {
  console.error("usage: node validate.mjs <openapi.json> <cases.json>");
  process.exit(2);
}
let doc, cases;
try {
  doc = JSON.parse(readFileSync(docPath, "utf8"));
  cases = JSON.parse(readFileSync(casesPath, "utf8"));
} catch (e) {
  console.error(`validate.mjs: ${e.message}`);
  process.exit(2);
}

const DOC_ID = "https://driftfeed.invalid/openapi.json";
// strict, but "required" may name properties the schema does not define
// (valid JSON Schema; the /openapi.json answer's schema does so).
const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true,
                          allowUnionTypes: true });
addFormats(ajv);
// OpenAPI's own schema keywords (annotations here), and the document's
// top-level members, so that the whole document can be the root that
// "#/components/..." references resolve in.
ajv.addVocabulary(["discriminator", "xml", "externalDocs", "example"]);
ajv.addVocabulary(["openapi", "info", "servers", "tags", "paths", "components", "webhooks",
                   "security", "jsonSchemaDialect"]);
ajv.addSchema({ ...doc, $id: DOC_ID });

const escape = (s) => s.replace(/~/g, "~0").replace(/\//g, "~1");
const unescape = (s) => s.replace(/~1/g, "/").replace(/~0/g, "~");

function at(pointer) {
  let node = doc;
  for (const part of pointer.replace(/^#\/?/, "").split("/").filter((p) => p !== "")) {
    if (node === undefined) return undefined;
    node = node[unescape(part)];
  }
  return node;
}

// The pointer of a node, following a $ref it may be.
function follow(pointer) {
  for (let i = 0; i < 10; i++) {
    const node = at(pointer);
    if (!node || typeof node.$ref !== "string") return pointer;
    pointer = node.$ref;
  }
  throw new Error(`$ref loop at ${pointer}`);
}

const compiled = new Map();
function validator(pointer) {
  if (!compiled.has(pointer)) compiled.set(pointer, ajv.compile({ $ref: DOC_ID + pointer }));
  return compiled.get(pointer);
}

function explain(v, instance) {
  return v.errors
    .slice(0, 8)
    .map((e) => {
      const extra = e.keyword === "additionalProperties" || e.keyword === "unevaluatedProperties"
        ? ` (${e.params.additionalProperty ?? e.params.unevaluatedProperty})` : "";
      return `    ${e.instancePath || "/"} ${e.message}${extra}`;
    })
    .join("\n") + `\n    instance: ${JSON.stringify(instance).slice(0, 400)}`;
}

const failures = [];
let checked = 0;

// Every schema of the document compiles.
for (const name of Object.keys(doc.components?.schemas ?? {})) {
  try {
    validator(`#/components/schemas/${escape(name)}`);
  } catch (e) {
    failures.push(`#/components/schemas/${name} does not compile: ${e.message}`);
  }
}

// One header value as its schema's type.
function headerValue(schema, raw) {
  const t = schema?.type;
  if ((t === "integer" || t === "number") && /^-?[0-9]+(\.[0-9]+)?$/.test(raw)) return Number(raw);
  return raw;
}

function check(label, pointer, instance, wantValid) {
  checked++;
  let v;
  try {
    v = validator(pointer);
  } catch (e) {
    failures.push(`${label}: ${pointer}: ${e.message}`);
    return;
  }
  const ok = v(instance);
  if (ok && wantValid === false) {
    failures.push(`${label}: ${pointer} accepted an instance it should reject:\n` +
                  `    instance: ${JSON.stringify(instance).slice(0, 400)}`);
  } else if (!ok && wantValid !== false) {
    failures.push(`${label}: does not match ${pointer}\n${explain(v, instance)}`);
  }
}

for (const [i, c] of cases.entries()) {
  const label = c.label ?? `case ${i}`;
  if (c.ref) {
    if (at(c.ref) === undefined) {
      failures.push(`${label}: ${c.ref} is not in the document`);
      continue;
    }
    check(label, c.ref, c.instance, c.valid);
    continue;
  }
  const op = `#/paths/${escape(c.path)}/${c.method.toLowerCase()}`;
  if (!at(op)) {
    failures.push(`${label}: ${c.method.toUpperCase()} ${c.path} is not in the document`);
    continue;
  }
  const respPtr = follow(`${op}/responses/${c.status}`);
  const resp = at(respPtr);
  if (!resp) {
    failures.push(`${label}: status ${c.status} is not documented`);
    continue;
  }
  const ctype = c.content_type ?? "application/json";
  if ("instance" in c) {
    if (!resp.content?.[ctype]) {
      failures.push(`${label}: ${ctype} is not documented for ${c.status}`);
    } else if (resp.content[ctype].schema) {
      check(label, `${respPtr}/content/${escape(ctype)}/schema`, c.instance, c.valid);
    }
  }
  for (const [name, h] of Object.entries(resp.headers ?? {})) {
    const value = Object.entries(c.headers ?? {}).find(([k]) => k.toLowerCase() === name.toLowerCase());
    if (!value) continue;
    const hPtr = follow(`${respPtr}/headers/${escape(name)}`);
    const schema = at(hPtr)?.schema;
    if (schema) check(`${label} (header ${name})`, `${hPtr}/schema`, headerValue(schema, value[1]));
  }
}

for (const f of failures) console.log(`FAIL ${f}`);
console.log(`${checked} instances checked, ${failures.length} failures`);
process.exit(failures.length ? 1 : 0);
