-- One track event per request, unique messageIds.
local counter = 0
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  math.randomseed(os.time() + tid * 7919)
  prefix = tostring(math.random(1000000000)) .. "-" .. tid .. "-"
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic " .. os.getenv("EVENTRELAY_BENCH_AUTH")

function request()
  counter = counter + 1
  local body = '{"userId":"u1","event":"Order Completed","messageId":"' .. prefix .. counter
    .. '","properties":{"revenue":9.99}}'
  return wrk.format(nil, "/v1/track", nil, body)
end
