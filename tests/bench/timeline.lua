-- timeline.lua -- wrk: GET /v1/timeline?limit=20 (a page of 20 posts) as
-- many users in turn.  wrk -s timeline.lua URL -- TOKENS_FILE
local tokens = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "tokens.lua")
local next_token

setup = tokens.setup

function init(args)
  next_token = tokens.load(args)
end

function request()
  return wrk.format("GET", "/v1/timeline?limit=20", { ["Authorization"] = "Bearer " .. next_token() })
end
