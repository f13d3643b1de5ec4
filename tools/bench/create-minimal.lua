-- wrk: durable creates of a small Observation of Patient/bench-1, answered
-- without a body (Prefer: return=minimal). 45-scale, ab-creates and
-- ab-pg-creates post it.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/fhir+json"
wrk.headers["Prefer"] = "return=minimal"
wrk.body = '{"resourceType":"Observation","status":"final","code":{"text":"created"},"subject":{"reference":"Patient/bench-1"},"valueInteger":1}'
