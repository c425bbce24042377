import { MigrationInterface, QueryRunner } from "typeorm"

/**
 * The plugin's hot statements as PL/pgSQL functions. PostgreSQL plans a
 * function's statements once per connection and keeps the plans; the same
 * statements sent as parameterized SQL are planned again on every request
 * (named prepared statements would keep them too, but break behind PgBouncer
 * in transaction mode, which functions do not). Planning was most of what the
 * server spent on a request (README, Performance).
 *
 * Read functions answer rows of `(kind, row::text)`, so one call can hand back
 * rows of several tables with whatever columns each table has (see
 * src/lib/row-text.ts). Names carry a version: a later change adds `_v2`
 * beside `_v1`, so instances still running the old code keep working during a
 * rolling deploy, and a later migration drops what no release calls.
 *
 * `pcp_lock_collection_v1` is VOLATILE on purpose: its read runs with a fresh
 * snapshot taken after the row lock, so it sees everything the previous holder
 * of the lock committed.
 */
export class CreatePaymentCollectionFunctions1796172000000 implements MigrationInterface {
  name = "CreatePaymentCollectionFunctions1796172000000"

  public async up(queryRunner: QueryRunner): Promise<void> {
    for (const statement of FUNCTIONS) {
      await queryRunner.query(statement)
    }
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    for (const name of [...FUNCTION_NAMES].reverse()) {
      await queryRunner.query(`DROP FUNCTION IF EXISTS ${name}`)
    }
  }
}

/** In creation order (the lock function calls the read function). */
const FUNCTION_NAMES = [
  "pcp_commit_attempts_v1",
  "pcp_payer_v1",
  "pcp_read_collection_v1",
  "pcp_lock_collection_v1",
  "pcp_write_sessions_v1",
  "pcp_write_authorization_v1",
  "pcp_save_authorization_status_v1",
  "pcp_start_attempt_v1",
  "pcp_answer_attempt_v1",
]

const FUNCTIONS = [
  // The one place that marks journal rows committed: called by the writes
  // below, in the request's transaction, so the rows commit with what they
  // describe or not at all. An ok answer the request did not journal on its own
  // (it commits with the rows) gets its outcome and latency here. A row given a
  // sweep_id brings a `find` row along (open, for the reconciler): a create the
  // provider's client may have sent twice is looked for.
  `CREATE FUNCTION pcp_commit_attempts_v1(p_committed jsonb)
  RETURNS void
  LANGUAGE sql VOLATILE AS $fn$
    UPDATE payment_collection_attempt a
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
     WHERE c.sweep_id IS NOT NULL;
  $fn$;`,
  // Who pays a collection: the customer of the order whose edit it pays (and the
  // order's email), else the logged-in customer of the request, else no row.
  `CREATE FUNCTION pcp_payer_v1(p_collection_id text, p_customer_id text)
  RETURNS TABLE (id text, email text, first_name text, last_name text, phone text, has_account boolean,
                 metadata jsonb, payer_email text)
  LANGUAGE sql STABLE AS $fn$
    SELECT c.id, c.email, c.first_name, c.last_name, c.phone, c.has_account, c.metadata, p.payer_email
      FROM (SELECT o.customer_id, o.email AS payer_email, 0 AS rank
              FROM order_edit oe JOIN "order" o ON o.id = oe.order_id
             WHERE oe.payment_collection_id = p_collection_id
            UNION ALL
            SELECT p_customer_id, NULL, 1 WHERE p_customer_id IS NOT NULL) p
      JOIN customer c ON c.id = p.customer_id AND c.deleted_at IS NULL
     ORDER BY p.rank
     LIMIT 1;
  $fn$;`,
  `CREATE FUNCTION pcp_read_collection_v1(p_collection_id text)
  RETURNS TABLE (kind text, body text)
  LANGUAGE plpgsql STABLE AS $fn$
  #variable_conflict use_column
  BEGIN
    RETURN QUERY
      SELECT 'collection'::text, pc::text
        FROM payment_collection pc
       WHERE pc.id = p_collection_id AND pc.deleted_at IS NULL;
    IF NOT FOUND THEN
      RETURN;
    END IF;
    RETURN QUERY
      SELECT 'region'::text, r::text
        FROM payment_collection pc
        JOIN region r ON r.id = pc.region_id AND r.deleted_at IS NULL
       WHERE pc.id = p_collection_id;
    RETURN QUERY
      SELECT 'providers'::text,
             COALESCE(json_agg(json_build_object(
                        'id', pp.id,
                        'is_installed', pp.is_installed,
                        'enabled', COALESCE(s.is_enabled, true))
                      ORDER BY pp.id), '[]'::json)::text
        FROM payment_collection pc
        JOIN region_payment_providers rpp ON rpp.region_id = pc.region_id
        JOIN payment_provider pp ON pp.id = rpp.provider_id
        LEFT JOIN payment_collection_provider_setting s ON s.provider_id = pp.id
       WHERE pc.id = p_collection_id;
    RETURN QUERY
      SELECT 'session'::text, ps::text
        FROM payment_collection_sessions pcs
        JOIN payment_session ps ON ps.id = pcs.payment_session_id
       WHERE pcs.payment_collection_id = p_collection_id
       ORDER BY ps.created_at, ps.id;
  END
  $fn$;`,
  // Also answers who pays (pcp_payer_v1) and the calls still open on the collection's sessions (an update
  // or authorize whose answer is not settled yet): a request settles or waits
  // for them before it calls the provider on that session again. It sets the
  // transaction's own idle_in_transaction_session_timeout above the longest
  // provider call (transaction-local, so PgBouncer's transaction mode keeps
  // working), so a server-wide setting cannot end the transaction, and its row
  // lock, during a call.
  `CREATE FUNCTION pcp_lock_collection_v1(p_collection_id text, p_lock_timeout text, p_idle_timeout text, p_customer_id text)
  RETURNS TABLE (kind text, body text)
  LANGUAGE plpgsql VOLATILE AS $fn$
  #variable_conflict use_column
  BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    PERFORM set_config('idle_in_transaction_session_timeout', p_idle_timeout, true);
    PERFORM 1
       FROM payment_collection pc
      WHERE pc.id = p_collection_id AND pc.deleted_at IS NULL
        FOR UPDATE OF pc NOWAIT;
    IF NOT FOUND THEN
      RETURN;
    END IF;
    RETURN QUERY SELECT r.kind, r.body FROM pcp_read_collection_v1(p_collection_id) r;
    RETURN QUERY
      SELECT 'open_call'::text,
             json_build_object(
               'id', a.id, 'session_id', a.payment_session_id, 'operation', a.operation, 'state', a.state,
               'in_flight', a.state = 'started' AND a.lease_until > now(), 'lease_until', a.lease_until,
               'retry_at', CASE WHEN a.next_attempt_at > now() THEN a.next_attempt_at END)::text
        FROM payment_collection_attempt a
        JOIN payment_collection_sessions pcs
          ON pcs.payment_session_id = a.payment_session_id AND pcs.payment_collection_id = p_collection_id
       WHERE a.payment_collection_id = p_collection_id
         AND a.state IN ('started', 'answered', 'uncertain', 'needs_attention')
         AND a.operation IN ('update', 'authorize');
    RETURN QUERY SELECT 'payer'::text, row_to_json(p)::text FROM pcp_payer_v1(p_collection_id, p_customer_id) p;
  END
  $fn$;`,
  `CREATE FUNCTION pcp_write_sessions_v1(
    p_collection_id text, p_created jsonb, p_updated jsonb, p_removed text[], p_committed jsonb)
  RETURNS SETOF payment_session
  LANGUAGE plpgsql VOLATILE AS $fn$
  #variable_conflict use_column
  BEGIN
    PERFORM pcp_commit_attempts_v1(p_committed);
    RETURN QUERY
      WITH created AS (
             INSERT INTO payment_session
                    (id, cart_id, provider_id, is_selected, is_initiated, status, data, amount)
             SELECT c.id, NULL, c.provider_id, NULL, true, 'pending', c.data, c.amount
               FROM jsonb_to_recordset(p_created) AS c(id text, provider_id text, data jsonb, amount int)
             RETURNING *),
           linked AS (
             INSERT INTO payment_collection_sessions (payment_collection_id, payment_session_id)
             SELECT p_collection_id, created.id FROM created),
           updated AS (
             UPDATE payment_session ps
                SET data = COALESCE(u.data, ps.data), amount = u.amount, is_initiated = true, updated_at = now()
               FROM jsonb_to_recordset(p_updated) AS u(id text, data jsonb, amount int)
              WHERE ps.id = u.id
             RETURNING ps.*),
           removed AS (
             DELETE FROM payment_session WHERE id = ANY(p_removed))
      SELECT * FROM created UNION ALL SELECT * FROM updated;
  END
  $fn$;`,
  `CREATE FUNCTION pcp_write_authorization_v1(
    p_collection_id text, p_session_id text, p_status payment_session.status%TYPE, p_data jsonb, p_payments jsonb,
    p_committed jsonb, p_amount integer)
  RETURNS SETOF payment_session
  LANGUAGE plpgsql VOLATILE AS $fn$
  #variable_conflict use_column
  BEGIN
    PERFORM pcp_commit_attempts_v1(p_committed);
    RETURN QUERY
      WITH session AS (
             UPDATE payment_session
                SET status = p_status, data = p_data, amount = COALESCE(p_amount, amount), updated_at = now(),
                    payment_authorized_at = CASE WHEN p_status = 'authorized' THEN now() ELSE payment_authorized_at END
              WHERE id = p_session_id
             RETURNING *),
           -- A payment recorded after the order edit it pays was completed (an authorization adopted
           -- late) belongs to the order, as core's complete route links those it found.
           payment AS (
             INSERT INTO payment (id, amount, currency_code, provider_id, data, order_id)
             SELECT p.id, p.amount, p.currency_code, p.provider_id, p.data,
                    (SELECT oe.order_id FROM order_edit oe
                      WHERE oe.payment_collection_id = p_collection_id AND oe.confirmed_at IS NOT NULL)
               FROM jsonb_to_recordset(p_payments) AS p(id text, amount int, currency_code text, provider_id text, data jsonb)
             RETURNING id),
           linked AS (
             INSERT INTO payment_collection_payments (payment_collection_id, payment_id)
             SELECT p_collection_id, payment.id FROM payment)
      SELECT * FROM session;
  END
  $fn$;`,
  `CREATE FUNCTION pcp_save_authorization_status_v1(
    p_collection_id text, p_status payment_collection.status%TYPE, p_authorized_amount integer)
  RETURNS TABLE (kind text, body text)
  LANGUAGE plpgsql VOLATILE AS $fn$
  #variable_conflict use_column
  BEGIN
    IF p_status IS NULL THEN
      RETURN QUERY
        SELECT 'collection'::text, pc::text FROM payment_collection pc WHERE pc.id = p_collection_id;
    ELSE
      RETURN QUERY
        UPDATE payment_collection pc
           SET status = p_status,
               authorized_amount = p_authorized_amount, updated_at = now()
         WHERE pc.id = p_collection_id
        RETURNING 'collection'::text, pc::text;
    END IF;
    RETURN QUERY
      SELECT 'payment'::text, p::text
        FROM payment_collection_payments pcp
        JOIN payment p ON p.id = pcp.payment_id
       WHERE pcp.payment_collection_id = p_collection_id
       ORDER BY p.created_at, p.id;
  END
  $fn$;`,
  `CREATE FUNCTION pcp_start_attempt_v1(
    p_id text, p_collection_id text, p_session_id text, p_provider_id text, p_operation text,
    p_amount integer, p_currency_code text, p_provider_data jsonb, p_request_id text,
    p_idempotency_key text, p_process text, p_lease_ms double precision)
  RETURNS void
  LANGUAGE plpgsql VOLATILE AS $fn$
  BEGIN
    INSERT INTO payment_collection_attempt
           (id, payment_collection_id, payment_session_id, provider_id, operation, state,
            amount, currency_code, provider_data, request_id, idempotency_key, process, lease_until)
    VALUES (p_id, p_collection_id, p_session_id, p_provider_id, p_operation, 'started',
            p_amount, p_currency_code, p_provider_data, p_request_id, p_idempotency_key, p_process,
            now() + make_interval(secs => p_lease_ms / 1000));
  END
  $fn$;`,
  `CREATE FUNCTION pcp_answer_attempt_v1(
    p_id text, p_state text, p_outcome text, p_error_code text, p_error_message text,
    p_provider_data jsonb, p_latency_ms integer)
  RETURNS void
  LANGUAGE plpgsql VOLATILE AS $fn$
  BEGIN
    UPDATE payment_collection_attempt
       SET state = CASE WHEN state IN ('started', 'needs_attention') THEN p_state ELSE state END,
           outcome = p_outcome, error_code = p_error_code, error_message = p_error_message,
           provider_data = COALESCE(p_provider_data, provider_data),
           latency_ms = p_latency_ms, answered_at = now()
     WHERE id = p_id;
  END
  $fn$;`,
]
