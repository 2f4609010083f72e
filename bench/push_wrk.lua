-- wrk script for bench/push_bench.py: single status pushes with JSON bodies, loopback only.
-- Environment: ONTS (how many ONT ids), PREFIX (id prefix, default ""), MIX ("poller" or
-- "storm"). Poller: 1 push in 20 reports a problem (OFF, rto 1), the rest all-clear;
-- storm: every push a change. Each wrk thread walks its own stride of the ids.
local onts = tonumber(os.getenv("ONTS") or "10000")
local prefix = os.getenv("PREFIX") or ""
local storm = (os.getenv("MIX") or "poller") == "storm"
local counter = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  counter = offset or 0
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 7
  local i = counter
  local body
  if storm then
    local status = (i % 7 == 0) and "OFF" or "ON"
    body = string.format('{"status":"%s","rto_count":%d}', status, i % 4)
  elseif i % 20 == 0 then
    body = '{"status":"OFF","rto_count":1}'
  else
    body = '{"status":"ON","rto_count":0}'
  end
  local path = string.format("/api/ont-status/%s%d", prefix, i % onts + 1)
  return wrk.format("POST", path, nil, body)
end
