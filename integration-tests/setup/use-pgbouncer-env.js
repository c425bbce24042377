"use strict"

// setupFiles of the "pgbouncer" jest project: its test files read the env file
// of the PgBouncer harness. process.env here is the test file's own copy.
process.env.PCP_TEST_ENV_FILE = process.env.PCP_TEST_ENV_FILE_PGBOUNCER
