-- wrk script: POST /auth/login for one of 200 accounts load-0 … load-199 (registered beforehand by
-- loadtest/login_monitoring.sh), with the right password: every request is a full login, password
-- hash included.
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local body = string.format('{"username": "load-%d", "password": "Load-test-pass-1234!"}', counter % 200)
  return wrk.format(nil, nil, nil, body)
end
