-- wrk script for benches/node_cluster.sh: counts the responses each worker pid gave
-- ("Hello from worker PID" in the body) and prints one line per pid at the end:
--   split PID COUNT
-- A separate wrk run from the throughput runs: a response() callback costs wrk time.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  other = 0
end

function response(status, headers, body)
  local pid = body and string.match(body, "^Hello from worker (%d+)")
  if pid then
    counts[pid] = (counts[pid] or 0) + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local total = {}
  local others = 0
  for _, t in ipairs(threads) do
    for pid, n in pairs(t:get("counts")) do
      total[pid] = (total[pid] or 0) + n
    end
    others = others + t:get("other")
  end
  for pid, n in pairs(total) do
    io.write(string.format("split %s %d\n", pid, n))
  end
  io.write(string.format("split other %d\n", others))
end
