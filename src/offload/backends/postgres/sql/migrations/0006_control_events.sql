-- Pauses, resumes and finished batches are events of no job on the same feed as
-- the jobs' transitions (lifecycle.CONTROL_KINDS), so their job_id is NULL.
-- Dropping NOT NULL changes only the catalogue: no rewrite of the table.
ALTER TABLE {schema}.events ALTER COLUMN job_id DROP NOT NULL;
