-- masto.lua -- GET /api/v1/timelines/home (the Mastodon subset's home
-- timeline, 20 statuses a page) as random users of the target region: the
-- same posts as timeline.lua, rendered as Mastodon Statuses.
local df = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
df.install("masto-home", function(seed)
  local tokens, n = seed.tokens, #seed.tokens
  return function()
    return "GET", "/api/v1/timelines/home", { Authorization = "Bearer " .. tokens[math.random(n)] },
        nil, "masto_home"
  end
end)
