-- mix.lua -- the mixed workload against one region: 80% home timeline reads
-- (following `next` sometimes), 15% posts, 5% direct messages, as users of
-- that region. Run one wrk per region at once (tests/load/report does);
-- DF_RATE paces it (requests/s of this wrk).
local df = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
df.install("mix", function(seed)
  local timeline, answer = df.timeline(seed)
  return df.mix({ { 0.80, timeline }, { 0.15, df.post(seed) }, { 0.05, df.message_send(seed) } }),
      answer
end)
