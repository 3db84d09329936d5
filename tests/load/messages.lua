-- messages.lua -- direct messages as random users of the target region:
-- 50% POST /v1/messages (mostly to a seeded conversation partner),
-- 30% GET /v1/messages/{peer}, 20% GET /v1/conversations.
local df = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
df.install("messages", function(seed)
  return df.mix({ { 0.5, df.message_send(seed) }, { 0.3, df.message_read(seed) },
    { 0.2, df.conversations(seed) } })
end)
