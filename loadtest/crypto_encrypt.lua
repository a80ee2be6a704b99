-- wrk script: POST /crypto/encrypt with a 1 KiB plaintext (INTERNAL, no owner, or with an owner when
-- OWNER=1), authenticated by the API key in the environment variable API_KEY.
local plaintext = string.rep("x", 1024)
local owner = os.getenv("OWNER") == "1" and ', "user_id": "customer-7"' or ""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("API_KEY")
wrk.body = '{"plaintext": "' .. plaintext .. '", "context": {"data_classification": "INTERNAL", "purpose": "load"' .. owner .. '}}'
-- wrk prints "Non-2xx or 3xx responses: N" when any answer was not a success: its absence is the check.
