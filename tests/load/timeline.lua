-- timeline.lua -- GET /v1/timeline (home timeline, 20 posts a page) as random
-- users of the target region, following `next` cursors sometimes
-- (DF_FOLLOW_NEXT, default 0.2); with DF_SESSION_TOKEN, each carrying that
-- Session-Token.
local df = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
df.install("timeline", function(seed) return df.timeline(seed) end)
