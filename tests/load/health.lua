-- health.lua -- GET /health: the ceiling the other figures are compared to.
-- Same response accounting as the other scripts, so the ratio compares like
-- with like (wrk's Lua response callback costs wrk CPU on every answer).
local df = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
df.install("health", function(seed)
  return function() return "GET", "/health", {}, nil, "health" end
end)
