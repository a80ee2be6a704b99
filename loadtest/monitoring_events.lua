-- wrk script: POST /monitoring/events, a LOGIN_FAILURE report for one of 1,000 users from one of 250
-- addresses (so the brute-force and spraying detectors count real windows and open incidents as the
-- run goes), authenticated by the API key in the environment variable API_KEY.
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("API_KEY")
request = function()
  counter = counter + 1
  local body = string.format(
    '{"event_type": "LOGIN_FAILURE", "user_id": "user-%d", "ip_address": "198.51.100.%d", "source": "load"}',
    counter % 1000, counter % 250)
  return wrk.format(nil, nil, nil, body)
end
-- wrk prints "Non-2xx or 3xx responses: N" when any answer was not a success: its absence is the check.
