-- wrk script for the benchmark's cases. Arguments (after wrk's "--"):
--   THREADS list FILE              GET the URL paths in FILE round-robin: thread i of THREADS
--                                  takes paths i, i+THREADS, ... (wrapping around at the end)
--   THREADS range PATH SIZE CHUNK SEED
--                                  GET CHUNK-byte ranges of PATH (SIZE bytes long) at random
--                                  offsets drawn from SEED, the same for the same seed
-- done() prints one line, "RESULT key=value ...", for the benchmark script to read.

local threads = 0

function setup(thread)
   thread:set("id", threads)
   threads = threads + 1
end

function init(args)
   nthreads = tonumber(args[1])
   mode = args[2]
   if mode == "list" then
      paths = {}
      for line in io.lines(args[3]) do
         paths[#paths + 1] = line
      end
      pos = id + 1
   elseif mode == "range" then
      path, size, chunk = args[3], tonumber(args[4]), tonumber(args[5])
      math.randomseed(tonumber(args[6]) + id)
   else
      error("media.lua: unknown mode " .. tostring(mode))
   end
end

function request()
   if mode == "list" then
      local p = paths[(pos - 1) % #paths + 1]
      pos = pos + nthreads
      return wrk.format("GET", p)
   end
   local first = math.random(0, size - chunk)
   return wrk.format("GET", path, { Range = "bytes=" .. first .. "-" .. (first + chunk - 1) })
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d bytes=%d duration_us=%d p50_us=%d p99_us=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests, summary.bytes, summary.duration,
      latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.status, e.timeout))
end
