-- Replays requests read from a file, for wrk:
--   wrk -t1 -c32 -d10s -s replay.lua http://127.0.0.1:PORT -- FILE THREADS
-- Each line of FILE is: METHOD \t PATH \t BODY \t Name: value \t Name: value ...
-- Thread k takes lines k, k+THREADS, ... so single-use requests (DPoP proofs,
-- client assertions) never go out twice from two threads. Each thread cycles
-- through its lines; `wrapped` counts how often it had to start again, which
-- for single-use requests means replays the gateway will refuse.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    table.insert(fields, field)
  end
  return fields
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2] or "1")
  requests, position, wrapped = {}, 0, 0
  local n = 0
  for line in io.lines(file) do
    if line ~= "" then
      if n % nthreads == id then
        local fields = split(line)
        local headers = {}
        for k = 4, #fields do
          local name, value = fields[k]:match("^([^:]+):%s*(.*)$")
          if name then headers[name] = value end
        end
        local body = fields[3] ~= "" and fields[3] or nil
        table.insert(requests, wrk.format(fields[1], fields[2], headers, body))
      end
      n = n + 1
    end
  end
  if #requests == 0 then
    error("no requests for thread " .. id .. " in " .. file)
  end
end

function request()
  position = position + 1
  if position > #requests then
    position, wrapped = 1, wrapped + 1
  end
  return requests[position]
end

function done(summary, latency, requests)
  local total_wrapped = 0
  for _, thread in ipairs(threads) do
    total_wrapped = total_wrapped + (thread:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,'
      .. '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"mean_us":%.1f,"wrapped":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, total_wrapped))
end
