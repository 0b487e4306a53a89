-- A resource request with a DPoP-bound token, each with its own proof (bench/sign-dpop-proofs.js
-- wrote them to BENCH_PROOFS, one per line): a replayed proof is refused. Threads take disjoint
-- lines; wrk starts each thread as soon as it is set up, so the thread count comes from
-- BENCH_THREADS.
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  lines, step, next_line = {}, tonumber(os.getenv("BENCH_THREADS") or "1"), id + 1
  for line in io.lines(os.getenv("BENCH_PROOFS")) do lines[#lines + 1] = line end
  wrk.method = os.getenv("BENCH_METHOD")
  authorization = os.getenv("BENCH_AUTH")
end
function request()
  local p = lines[next_line]
  next_line = next_line + step
  if p == nil then p = "exhausted" end
  return wrk.format(nil, nil, { ["Authorization"] = authorization, ["DPoP"] = p }, nil)
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("BENCH %.1f %.3f %.3f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, errors))
end
