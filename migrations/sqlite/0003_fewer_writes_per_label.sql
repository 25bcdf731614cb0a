-- Fewer writes per label on the hot path (the Postgres migration 0004 explains it at length).
--
-- Lineage of assignments and labels is read from their own rows through the view `lineage_records` (the
-- `lineage` table keeps what has no row to derive it from: exports); a claim and a submit no longer insert a
-- lineage row each. Two indexes nothing read are dropped: the per-queue reclaim and the stats find a queue's
-- live leases through assignments_one_live_lease_idx, and exports page through labels_queue_id_idx.

CREATE VIEW lineage_records AS
SELECT a.tenant_id, a.id, 'assignment' AS entity_kind, a.id AS entity_id, a.labeler AS actor,
       json_object('queue_id', a.queue_id, 'sample_id', a.sample_id, 'schema_version', a.schema_version)
           AS inputs,
       a.leased_at AS created_at
FROM assignments a
UNION ALL
SELECT l.tenant_id, l.id, 'label', l.id, l.labeler,
       json_object('assignment_id', l.assignment_id, 'sample_id', l.sample_id, 'schema_version', l.schema_version),
       l.created_at
FROM labels l
UNION ALL
SELECT x.tenant_id, x.id, x.entity_kind, x.entity_id, x.actor, x.inputs, x.created_at
FROM lineage x
WHERE x.entity_kind NOT IN ('assignment', 'label');

DELETE FROM lineage WHERE entity_kind IN ('assignment', 'label');

DROP INDEX assignments_queue_leased_idx;
DROP INDEX labels_queue_created_idx;
