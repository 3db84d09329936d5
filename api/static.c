/* static.c -- serves the browser demo (web/) at / : index.html and the
 * files beside it, by plain names only (no paths, no dot files). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".js") || !strcmp(dot, ".mjs")) return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(dot, ".svg")) return "image/svg+xml";
    if (!strcmp(dot, ".png")) return "image/png";
    if (!strcmp(dot, ".ico")) return "image/x-icon";
    if (!strcmp(dot, ".json")) return "application/json";
    return "application/octet-stream";
}

void api_static(api_req *r)
{
    const char *name = r->params[0] ? r->params[0] : "index.html";
    bool ok = name[0] != '.' && strlen(name) < 128;
    for (const char *p = name; *p && ok; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '.' || *p == '-' || *p == '_';
    char path[768];
    snprintf(path, sizeof path, "%s/%s", r->ctx->cfg->web_dir, name);
    FILE *f = ok ? fopen(path, "rb") : NULL;
    if (!f) {
        api_error(r, 404, "not_found", "no such resource");
        return;
    }
    api_buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (4u << 20))
        api_buf_append(&b, chunk, n);
    fclose(f);
    api_reply_buf(r, 200, &b, type_of(name));
}
