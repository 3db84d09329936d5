-- posts.lua -- POST /v1/posts as random users of the target region (each post
-- is then fanned out in every region and replicated).
local df = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
df.install("posts", function(seed) return df.post(seed) end)
