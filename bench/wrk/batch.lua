-- 500-event Segment batches with unique messageIds (SDK-like: timestamp, sentAt, context).
local counter = 0
local threads = 0
local template

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  local event = '{"type":"track","userId":"u1","event":"Order Completed","messageId":"MSGID",'
    .. '"timestamp":"2026-11-25T12:00:00.123+00:00","properties":{"revenue":9.99,"currency":"USD",'
    .. '"products":[{"sku":"A","price":9.99}]},"context":{"ip":"1.2.3.4","userAgent":"Mozilla/5.0",'
    .. '"library":{"name":"analytics-python","version":"2.4.0"}}}'
  local events = {}
  for i = 1, 500 do events[i] = event end
  template = '{"batch":[' .. table.concat(events, ",") .. '],"sentAt":"2026-11-25T12:00:01.000+00:00"}'
  math.randomseed(os.time() + tid * 7919)
  prefix = tostring(math.random(1000000000)) .. "-" .. tid .. "-"
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic " .. os.getenv("EVENTRELAY_BENCH_AUTH")

function request()
  local body = template:gsub("MSGID", function()
    counter = counter + 1
    return prefix .. counter
  end)
  return wrk.format(nil, "/v1/batch", nil, body)
end
