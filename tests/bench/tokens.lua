-- tokens.lua -- shared by timeline.lua and post.lua: loads the access
-- tokens (one a line, the file named by the first script argument) and
-- hands them out round-robin, each wrk thread from its own offset.
local M = {}
local counter = 0

function M.setup(thread)
  thread:set("thread_no", counter)
  counter = counter + 1
end

function M.load(args)
  local path = args[1]
  local f = path and io.open(path, "r")
  if not f then
    io.stderr:write("wrk: pass the tokens file after --\n")
    os.exit(2)
  end
  local tokens = {}
  for line in f:lines() do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  f:close()
  local i = ((thread_no or 0) * 7919) % #tokens
  return function()
    i = i % #tokens + 1
    return tokens[i]
  end
end

return M
