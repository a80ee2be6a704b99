-- wrk script: POST a client-credentials token request (RFC 6749 §4.4) with HTTP Basic client
-- authentication from the environment variable BASIC (base64 of "id:secret") and scope SCOPE.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")
wrk.body = "grant_type=client_credentials&scope=" .. (os.getenv("SCOPE") or "api")
-- wrk prints "Non-2xx or 3xx responses: N" when any answer was not a success: its absence is the check.
