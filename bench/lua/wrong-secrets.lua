-- A flood of wrong secrets, each one different: identical guesses would share one argon2
-- verification (single flight), so only distinct ones cost what an attacker's guesses cost.
-- BENCH_CLIENT_ID names the attacked client; BENCH_BODY is the form body.
local client_id = os.getenv("BENCH_CLIENT_ID") or "unknown"
local body = os.getenv("BENCH_BODY") or ""
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

local n = 0
local thread_tag = tostring(math.random(1, 1e9))

request = function()
  n = n + 1
  local auth = "Basic " .. b64(client_id .. ":wrong-" .. thread_tag .. "-" .. n)
  return wrk.format("POST", nil, {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, body)
end
