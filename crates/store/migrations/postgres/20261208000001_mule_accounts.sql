-- Money-mule accounts (postgres dialect). Keep in step with ../sqlite/.
-- The accounts an ATS or drop panel recorded as where the stolen money goes (JSON array of
-- strings). They are the criminals' infrastructure, not the victim's data: kept in clear so that
-- banks can block transfers to them; the victim's secrets stay masked as before.

ALTER TABLE records ADD COLUMN mule_accounts TEXT NOT NULL DEFAULT '[]';
