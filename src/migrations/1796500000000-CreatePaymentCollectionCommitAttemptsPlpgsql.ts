import { MigrationInterface, QueryRunner } from "typeorm"

/**
 * `pcp_commit_attempts_v1` (every write function calls it, in every create,
 * update, batch and authorize) was a two-statement SQL function, which
 * PostgreSQL plans again on every call. The same body in PL/pgSQL keeps its
 * plans per connection, as the other functions do: under the bench's create
 * and batch authorize (`pg_stat_statements`, track = all) a call went from
 * 0.46–0.48 ms to 0.23–0.27 ms, and the write functions calling it from
 * 0.76/0.80 ms to 0.53/0.69 ms. Same name, arguments and effect, so an
 * instance still running the previous release calls it unchanged (no `_v2`
 * needed, see the functions migration).
 */
export class CreatePaymentCollectionCommitAttemptsPlpgsql1796500000000 implements MigrationInterface {
  name = "CreatePaymentCollectionCommitAttemptsPlpgsql1796500000000"

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE OR REPLACE FUNCTION pcp_commit_attempts_v1(p_committed jsonb)
  RETURNS void
  LANGUAGE plpgsql VOLATILE AS $fn$
  BEGIN
${BODY}
  END;
  $fn$`)
  }

  /** Back to the SQL function CreatePaymentCollectionFunctions made. */
  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE OR REPLACE FUNCTION pcp_commit_attempts_v1(p_committed jsonb)
  RETURNS void
  LANGUAGE sql VOLATILE AS $fn$
${BODY}
  $fn$`)
  }
}

/** The function's two statements, the same in either language. */
const BODY = `    UPDATE payment_collection_attempt a
       SET state = 'committed', finished_at = now(), resolved_by = 'request',
           outcome = COALESCE(a.outcome, 'ok'), latency_ms = COALESCE(a.latency_ms, c.latency_ms),
           answered_at = COALESCE(a.answered_at, now())
      FROM jsonb_to_recordset(p_committed) AS c(id text, latency_ms integer)
     WHERE a.id = c.id AND a.state IN ('started', 'answered');
    INSERT INTO payment_collection_attempt
           (id, payment_collection_id, payment_session_id, provider_id, operation, state, amount, currency_code,
            provider_data, request_id, process, lease_until, created_at)
    SELECT c.sweep_id, a.payment_collection_id, NULL, a.provider_id, 'find', 'uncertain', a.amount, a.currency_code,
           c.sweep_data, a.request_id, a.process, now(), a.created_at
      FROM jsonb_to_recordset(p_committed) AS c(id text, sweep_id text, sweep_data jsonb)
      JOIN payment_collection_attempt a ON a.id = c.id
     WHERE c.sweep_id IS NOT NULL;`
