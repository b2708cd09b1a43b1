-- The CRM's HTTP API.
--
-- updated_at: when the call, its links, its notes or its recording last
-- changed, so a CRM syncing incrementally (updated_since) sees every change.
-- origin: captured (seen on the wire) or api (created by POST /v1/calls);
-- not "source", which call_links has for how a link came about.
-- note_count: kept with the notes, so has_note needs no join.
ALTER TABLE {calls} ADD COLUMN updated_at {ts};
UPDATE {calls} SET updated_at = written_at WHERE updated_at IS NULL;
ALTER TABLE {calls} ADD COLUMN origin VARCHAR(16) NOT NULL DEFAULT 'captured';
ALTER TABLE {calls} ADD COLUMN note_count BIGINT NOT NULL DEFAULT 0;
CREATE INDEX {p}calls_updated_at ON {calls} (updated_at, id);
CREATE INDEX {p}calls_duration ON {calls} (duration, id);
CREATE INDEX {p}calls_started_id ON {calls} (started_at, id);
-- A Call-ID alone (the unique key leads with the sensor), and sort=direction.
CREATE INDEX {p}calls_call_id ON {calls} (call_id);
CREATE INDEX {p}calls_direction_id ON {calls} (direction, id);

-- A note may set the linked CRM record's status (crm.records status_column).
ALTER TABLE {call_notes} ADD COLUMN status VARCHAR(64);
ALTER TABLE {call_notes} ADD COLUMN key_id BIGINT;

-- API keys: only the SHA-256 of the secret is kept; prefix is the token's
-- public part, shown by `keys list`.
CREATE TABLE IF NOT EXISTS {api_keys} (
    id            {pk},
    name          VARCHAR(128) NOT NULL,
    prefix        VARCHAR(32)  NOT NULL,
    secret_hash   VARCHAR(64)  NOT NULL,
    role          VARCHAR(64)  NOT NULL,
    agent_id      VARCHAR(191),
    created_at    {ts} NOT NULL,
    expires_at    {ts},
    revoked_at    {ts},
    last_used_at  {ts}
){opts};
CREATE UNIQUE INDEX {p}api_keys_prefix ON {api_keys} (prefix);

-- Every recording access. No foreign key: the audit outlives a deleted call.
CREATE TABLE IF NOT EXISTS {recording_access} (
    id           {pk},
    key_id       BIGINT       NOT NULL,
    call_row     BIGINT       NOT NULL,
    sensor       VARCHAR(64)  NOT NULL,
    call_id      VARCHAR(255) NOT NULL,
    access       VARCHAR(16)  NOT NULL,
    accessed_at  {ts} NOT NULL,
    range_start  BIGINT,
    range_end    BIGINT,
    bytes        BIGINT       NOT NULL,
    http_status  BIGINT       NOT NULL
){opts};
CREATE INDEX {p}recording_access_call ON {recording_access} (call_row, accessed_at);
CREATE INDEX {p}recording_access_time ON {recording_access} (accessed_at);

-- POST /v1/calls with Idempotency-Key: the same key from the same API key
-- answers with the call it made the first time.
CREATE TABLE IF NOT EXISTS {idempotency_keys} (
    id            {pk},
    key_id        BIGINT       NOT NULL,
    idem_key      VARCHAR(191) NOT NULL,
    request_hash  VARCHAR(64)  NOT NULL,
    call_row      BIGINT       NOT NULL,
    created_at    {ts} NOT NULL
){opts};
CREATE UNIQUE INDEX {p}idempotency_keys_key ON {idempotency_keys} (key_id, idem_key);
