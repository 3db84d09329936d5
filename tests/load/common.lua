-- common.lua -- shared by the wrk scripts in tests/load: reads the seed
-- file, counts non-2xx answers per thread and fails the run on any, paces
-- requests to a target rate, and prints a machine-readable result line.
--
-- Each script does
--   local df = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
--   df.install(name, function(seed) return next_request, on_response end)
-- and the request makers below (timeline, post, message, ...) build its mix.
--
-- Environment (all optional):
--   DF_SEED_FILE   the seed file (default $DF_VAR/load-seed.txt, DF_VAR default var)
--   DF_RATE        target requests/s of this wrk process (all threads); unset = as fast as possible
--   DF_THREADS     wrk -t, needed with DF_RATE (default 2)
--   DF_USERS       "home" (default: users whose home is the region wrk targets) or "all"
--   DF_LOAD_SEED   random seed of the request choices (default 1)
--   DF_FOLLOW_NEXT chance that a timeline page's `next` cursor is fetched next (default 0.2)
--   DF_SESSION_TOKEN a Session-Token every timeline request carries (default: none)
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } df_timespec;
int clock_gettime(int clk, df_timespec *ts);
]]

local M = {}
local threads = {}
local counter = 0

local function now_s()
  local ts = ffi.new("df_timespec")
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local function seed_path()
  return os.getenv("DF_SEED_FILE") or ((os.getenv("DF_VAR") or "var") .. "/load-seed.txt")
end

-- Reads the seed file: regions {name = port}, users (home region's, or all)
-- as arrays ids/tokens, conversation partners by user id.
function M.load_seed(port)
  local path = seed_path()
  local f = io.open(path, "r")
  if not f then
    io.stderr:write("load: cannot open seed file " .. path .. " (run tests/load/seed; DF_SEED_FILE)\n")
    os.exit(2)
  end
  local s = { regions = {}, ids = {}, tokens = {}, all_ids = {}, partners = {}, home = nil }
  local lines = {}
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  for _, line in ipairs(lines) do
    local name, p = line:match("^region (%S+) (%d+)")
    if name then
      s.regions[name] = tonumber(p)
      if tonumber(p) == tonumber(port) then s.home = name end
    end
  end
  local everyone = os.getenv("DF_USERS") == "all" or s.home == nil
  local suffix = s.home and ("@" .. s.home) or ""
  for _, line in ipairs(lines) do
    local id, tok = line:match("^user (%S+) (%S+)")
    if id then
      s.all_ids[#s.all_ids + 1] = id
      if everyone or id:sub(-#suffix) == suffix then
        s.ids[#s.ids + 1] = id
        s.tokens[#s.tokens + 1] = tok
      end
    else
      local a, b = line:match("^conv (%S+) (%S+)")
      if a then
        s.partners[a] = s.partners[a] or {}
        table.insert(s.partners[a], b)
        s.partners[b] = s.partners[b] or {}
        table.insert(s.partners[b], a)
      end
    end
  end
  if #s.ids == 0 then
    io.stderr:write("load: no users in " .. path .. " for port " .. tostring(port) .. "\n")
    os.exit(2)
  end
  return s
end

local WORDS = { "the", "a", "of", "to", "and", "in", "is", "it", "you", "that", "coffee",
  "paris", "tokyo", "newyork", "rain", "sun", "train", "late", "early", "meeting", "lunch",
  "music", "film", "book", "today", "tomorrow", "weekend", "again", "finally", "great", "new" }

-- A pool of JSON-safe texts of lo..hi words, so request() does not build strings.
function M.texts(n, lo, hi)
  local out = {}
  for i = 1, n do
    local w = {}
    for j = 1, math.random(lo, hi) do w[j] = WORDS[math.random(#WORDS)] end
    out[i] = table.concat(w, " ")
  end
  return out
end

-- Installs the wrk callbacks. make(seed) is called once per thread in
-- init() and returns next_request() and, optionally, on_response(status,
-- body, tag) for scripts that use answers (pagination). next_request()
-- returns method, path, headers, body, kind (a name for the tally) and tag
-- (any value handed back with the answer). wrk does not say which request
-- an answer belongs to: a request with a tag carries X-Request-Id, which
-- the server echoes, so its answer gets that tag exactly; kinds (for the
-- error samples) are matched in sending order, which is exact per
-- connection and close across a thread's connections.
function M.install(name, make)
  local next_request, on_response
  local sent_kind, sent_tag, head, tail = {}, {}, 1, 0

  function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
    threads[#threads + 1] = thread
  end

  function init(args)
    math.randomseed((tonumber(os.getenv("DF_LOAD_SEED")) or 1) * 1000 + tid)
    local seed = M.load_seed(wrk.port)
    next_request, on_response = make(seed)
    non2xx, answered, samples, nsamples, tally = 0, 0, "", 0, {}
  end

  function request()
    local method, path, headers, body, kind, tag = next_request()
    tail = tail + 1
    sent_kind[tail] = kind
    if tag ~= nil then
      -- The server echoes X-Request-Id: the answer finds its tag exactly.
      headers["X-Request-Id"] = tostring(tail)
      sent_tag[tail] = tag
    end
    tally[kind] = (tally[kind] or 0) + 1
    return wrk.format(method, path, headers, body)
  end

  function response(status, headers, body)
    answered = answered + 1
    local kind, tag = sent_kind[head], nil
    if head <= tail then
      sent_kind[head] = nil
      head = head + 1
    end
    local rid = tonumber(headers["X-Request-Id"] or headers["x-request-id"] or "")
    if rid then
      tag = sent_tag[rid]
      sent_tag[rid] = nil
    end
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if nsamples < 5 then
        nsamples = nsamples + 1
        samples = samples .. string.format("%s %d %s\n", tostring(kind), status,
          (body or ""):sub(1, 160))
      end
    elseif on_response then
      on_response(status, body, tag)
    end
  end

  local rate = tonumber(os.getenv("DF_RATE") or "")
  if rate and rate > 0 then
    local interval = (tonumber(os.getenv("DF_THREADS")) or 2) / rate
    local next_slot = nil
    -- Open-loop pacing: each request takes the next free slot of a
    -- per-thread schedule, and wrk waits (slot - now) ms before sending it.
    function delay()
      local t = now_s()
      if not next_slot or next_slot < t - 1 then next_slot = t end -- no burst after a stall
      local slot = next_slot
      next_slot = next_slot + interval
      local d = (slot - t) * 1000
      return d > 0 and math.floor(d) or 0
    end
  end

  function done(summary, latency, requests)
    local bad, got, samp, kinds = 0, 0, "", {}
    for _, t in ipairs(threads) do
      bad = bad + (t:get("non2xx") or 0)
      got = got + (t:get("answered") or 0)
      samp = samp .. (t:get("samples") or "")
      local tl = t:get("tally") or {}
      for k, v in pairs(tl) do kinds[k] = (kinds[k] or 0) + v end
    end
    local e = summary.errors
    local sock = e.connect + e.read + e.write + e.timeout
    local secs = summary.duration / 1e6
    local kparts = {}
    for k, v in pairs(kinds) do kparts[#kparts + 1] = string.format('"%s":%d', k, v) end
    print(string.format(
      'LOADRESULT {"script":"%s","requests":%d,"seconds":%.3f,"rps":%.1f,' ..
      '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,' ..
      '"non2xx":%d,"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
      '"bytes":%d,"sent":{%s}}',
      name, summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency:percentile(99.9) / 1000, latency.max / 1000, latency.mean / 1000,
      bad, e.connect, e.read, e.write, e.timeout, summary.bytes, table.concat(kparts, ",")))
    if bad > 0 or sock > 0 then
      io.stderr:write(string.format(
        "\nLOAD FAIL (%s): %d non-2xx answers, %d socket errors (connect %d, read %d, write %d, timeout %d)\n%s",
        name, bad, sock, e.connect, e.read, e.write, e.timeout, samp))
      io.stderr:flush()
      io.stdout:flush()
      os.exit(1)
    end
  end
end

-- ---- Request makers: each returns a function giving method, path, headers,
-- body, kind, tag for next_request(), and (timeline) an answer handler.

local function auth(token) return { Authorization = "Bearer " .. token } end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- GET /v1/timeline as a random home user; with DF_FOLLOW_NEXT probability an
-- answer's `next` cursor is queued and fetched by the next timeline request
-- (with the token that asked for the page). With DF_SESSION_TOKEN every
-- request carries that Session-Token (the same for all: what a token costs
-- a read the region has caught up with).
function M.timeline(seed)
  local follow = tonumber(os.getenv("DF_FOLLOW_NEXT") or "0.2")
  local session = os.getenv("DF_SESSION_TOKEN")
  if session == "" then session = nil end
  local pending = {}
  local tokens, n = seed.tokens, #seed.tokens
  local function headers(tok)
    local h = auth(tok)
    if session then h["Session-Token"] = session end
    return h
  end
  local function make()
    local p = table.remove(pending)
    if p then
      return "GET", "/v1/timeline?cursor=" .. urlencode(p[2]), headers(p[1]), nil, "timeline_next",
          p[1]
    end
    local tok = tokens[math.random(n)]
    return "GET", "/v1/timeline", headers(tok), nil, "timeline", tok
  end
  local function answer(status, body, tag)
    if tag and #pending < 64 and math.random() < follow then
      local c = body:match('"next":"([^"]+)"')
      if c then pending[#pending + 1] = { tag, c } end
    end
  end
  return make, answer
end

-- POST /v1/posts as a random home user, text from a pool.
function M.post(seed)
  local texts = M.texts(256, 3, 40)
  local tokens, n = seed.tokens, #seed.tokens
  return function()
    local h = auth(tokens[math.random(n)])
    h["Content-Type"] = "application/json"
    return "POST", "/v1/posts", h, '{"text":"' .. texts[math.random(256)] .. '"}', "post"
  end
end

-- A sender (home user) and a recipient: one of its conversation partners
-- from the seed when it has any, else any user.
local function pair(seed)
  local i = math.random(#seed.ids)
  local from = seed.ids[i]
  local ps = seed.partners[from]
  local to
  if ps and math.random() < 0.8 then
    to = ps[math.random(#ps)]
  else
    repeat to = seed.all_ids[math.random(#seed.all_ids)] until to ~= from
  end
  return seed.tokens[i], to
end

-- POST /v1/messages.
function M.message_send(seed)
  local texts = M.texts(256, 2, 30)
  return function()
    local tok, to = pair(seed)
    local h = auth(tok)
    h["Content-Type"] = "application/json"
    return "POST", "/v1/messages", h,
        '{"to":"' .. to .. '","text":"' .. texts[math.random(256)] .. '"}', "message_send"
  end
end

-- GET /v1/messages/{peer}.
function M.message_read(seed)
  return function()
    local tok, to = pair(seed)
    return "GET", "/v1/messages/" .. to, auth(tok), nil, "message_read"
  end
end

-- GET /v1/conversations.
function M.conversations(seed)
  return function()
    return "GET", "/v1/conversations", auth(seed.tokens[math.random(#seed.tokens)]), nil,
        "conversations"
  end
end

-- Picks one of several makers by weight: mix({{0.8, f}, {0.2, g}}).
function M.mix(parts)
  return function()
    local r, acc = math.random(), 0
    for _, p in ipairs(parts) do
      acc = acc + p[1]
      if r < acc then return p[2]() end
    end
    return parts[#parts][2]()
  end
end

return M
