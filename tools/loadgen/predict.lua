-- wrk script for `mqan serve`'s HTTP path: POST /v1/predict with the requests of a decaNLP-format
-- JSONL file (context, question per line), one after another on each connection.
--   wrk -t2 -c64 -d30s -s tools/loadgen/predict.lua http://127.0.0.1:8080/v1/predict -- FILE.jsonl [TASK]
-- A reply that is not 200 counts in wrk's "Non-2xx or 3xx responses".
local bodies = {}
local index = 0

function init(args)
  local path = args[1] or "Tests/MQANTests/Fixtures/data/sst/validation.jsonl"
  local task = args[2] or "sst"
  local n = 0
  for line in io.lines(path) do
    local context = line:match('"context":%s*(".-[^\\]")')
    local question = line:match('"question":%s*(".-[^\\]")')
    if context and question then
      n = n + 1
      bodies[n] = '{"id":' .. n .. ',"task":"' .. task .. '","context":' .. context .. ',"question":' .. question .. '}'
    end
  end
  if n == 0 then error(path .. ": no context/question lines") end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  index = index % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[index])
end
