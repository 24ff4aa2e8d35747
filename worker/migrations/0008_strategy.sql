-- The policy rules each decision passed (models/policy.json): the rule set's name and
-- sha256 beside the model's, and the rules that held as JSON. NULL on decisions stored
-- before rules existed.
ALTER TABLE decisions ADD COLUMN policy_name TEXT;
ALTER TABLE decisions ADD COLUMN policy_sha256 TEXT;
ALTER TABLE decisions ADD COLUMN policy_hits TEXT;
-- What the applicant was told would be approved instead (recourse), as JSON, so that a
-- repeated request gets the same answer.
ALTER TABLE decisions ADD COLUMN recourse TEXT;
-- The shadow challenger's verdict (model, probability, decision) as JSON, when the shadow
-- was on; never part of the applicant's answer.
ALTER TABLE decisions ADD COLUMN shadow TEXT;
