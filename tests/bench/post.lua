-- post.lua -- wrk: POST /v1/posts as many users in turn (start the region
-- with --rate-limit 0).  wrk -s post.lua URL -- TOKENS_FILE
-- DF_POST_RATE=N (with DF_CONNS = wrk -c) paces the run to about N posts/s.
local tokens = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "tokens.lua")
local next_token
local body = '{"text":"a post from wrk: lorem ipsum dolor sit amet, consectetur adipiscing elit"}'

setup = tokens.setup

function init(args)
  next_token = tokens.load(args)
end

function request()
  return wrk.format("POST", "/v1/posts", {
    ["Authorization"] = "Bearer " .. next_token(),
    ["Content-Type"] = "application/json",
  }, body)
end

local rate = tonumber(os.getenv("DF_POST_RATE") or "")
if rate and rate > 0 then
  local conns = tonumber(os.getenv("DF_CONNS") or "64")
  function delay()
    return conns * 1000 / rate -- ms between two requests of one connection
  end
end
