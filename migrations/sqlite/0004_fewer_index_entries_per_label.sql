-- Fewer index entries and one row update less per label (the Postgres migration 0008 explains it): the
-- per-labeler statistics count labels, live leases (assignments_one_live_lease_idx) and released or expired
-- assignments (the partial index below, written only on a release or a reclaim); the reaper walks the live
-- leases; "completed samples" counts the samples with at least `overlap` labels, so the submit no longer
-- updates the sample's counter.

CREATE INDEX assignments_queue_finished_idx ON assignments (queue_id, labeler)
    WHERE state IN ('released', 'expired');
DROP INDEX assignments_queue_labeler_idx;
DROP INDEX assignments_leased_expiry_idx;
ALTER TABLE samples DROP COLUMN submitted_count;
