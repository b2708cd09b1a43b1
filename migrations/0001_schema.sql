-- pbxbridge's own tables. One template for SQLite, PostgreSQL and MySQL/MariaDB:
-- {calls} and the other table names carry the configured schema and prefix,
-- {p} is the prefix alone (for index names), {pk} an auto-increment primary key,
-- {ts} a UTC time with microseconds (TIMESTAMPTZ, DATETIME(6), or fixed-width
-- RFC 3339 text on SQLite, which sorts as time does), {opts} MySQL's table options.
-- VARCHAR lengths keep every index inside MySQL's 3072-byte key limit in utf8mb4.

-- One row per call and sensor. call_id is the SIP Call-ID (hashed when longer
-- than 255 bytes); the same call seen again (a restart, a replayed capture) is
-- the same row.
CREATE TABLE IF NOT EXISTS {calls} (
    id                     {pk},
    sensor                 VARCHAR(64)  NOT NULL,
    call_id                VARCHAR(255) NOT NULL,
    direction              VARCHAR(16)  NOT NULL,
    from_number            VARCHAR(64),
    to_number              VARCHAR(64),
    other_number           VARCHAR(64),
    from_raw               TEXT,
    to_raw                 TEXT,
    from_display           TEXT,
    agent                  VARCHAR(64),
    agent_type             VARCHAR(64),
    agent_id               VARCHAR(191),
    agent_name             VARCHAR(255),
    started_at             {ts} NOT NULL,
    answered_at            {ts},
    ended_at               {ts} NOT NULL,
    duration               DOUBLE PRECISION NOT NULL,
    outcome                VARCHAR(16)  NOT NULL,
    sip_code               BIGINT,
    end_reason             VARCHAR(32)  NOT NULL,
    answered_elsewhere     BOOLEAN      NOT NULL DEFAULT FALSE,
    dtmf                   TEXT         NOT NULL,
    held                   BOOLEAN      NOT NULL DEFAULT FALSE,
    recording_status       VARCHAR(32)  NOT NULL,
    recording_path         TEXT,
    recording_codec        VARCHAR(32),
    recording_sample_rate  BIGINT,
    recording_channels     BIGINT,
    recording_samples      BIGINT,
    recording_bytes        BIGINT,
    sip_src                VARCHAR(64),
    sip_dst                VARCHAR(64),
    caller_rtp_packets     BIGINT NOT NULL DEFAULT 0,
    caller_rtp_lost        BIGINT NOT NULL DEFAULT 0,
    caller_rtp_jitter_ms   DOUBLE PRECISION NOT NULL DEFAULT 0,
    callee_rtp_packets     BIGINT NOT NULL DEFAULT 0,
    callee_rtp_lost        BIGINT NOT NULL DEFAULT 0,
    callee_rtp_jitter_ms   DOUBLE PRECISION NOT NULL DEFAULT 0,
    written_at             {ts} NOT NULL
){opts};

CREATE UNIQUE INDEX {p}calls_sensor_call_id ON {calls} (sensor, call_id);
-- The call log lists newest first, filtered by one of these.
CREATE INDEX {p}calls_started_at ON {calls} (started_at);
CREATE INDEX {p}calls_outcome ON {calls} (outcome, started_at);
CREATE INDEX {p}calls_direction ON {calls} (direction, started_at);
CREATE INDEX {p}calls_agent ON {calls} (agent, started_at);
CREATE INDEX {p}calls_agent_id ON {calls} (agent_id, started_at);
CREATE INDEX {p}calls_from_number ON {calls} (from_number, started_at);
CREATE INDEX {p}calls_to_number ON {calls} (to_number, started_at);
CREATE INDEX {p}calls_other_number ON {calls} (other_number, started_at);

-- A call belongs to CRM records. source: auto (matched at call end), manual
-- (linked by hand), backfill (match-past-calls). field: the phone field that
-- matched, or the relation that led here (via_type/via_id). An unlinked
-- record keeps its row with removed_at set, so matching again never brings
-- back a link a person took away.
CREATE TABLE IF NOT EXISTS {call_links} (
    id            {pk},
    call_row      BIGINT       NOT NULL,
    record_type   VARCHAR(64)  NOT NULL,
    record_id     VARCHAR(191) NOT NULL,
    field         VARCHAR(128),
    source        VARCHAR(16)  NOT NULL,
    via_type      VARCHAR(64),
    via_id        VARCHAR(191),
    display_name  VARCHAR(255),
    created_at    {ts} NOT NULL,
    removed_at    {ts},
    FOREIGN KEY (call_row) REFERENCES {calls} (id) ON DELETE CASCADE
){opts};

CREATE UNIQUE INDEX {p}call_links_call_record ON {call_links} (call_row, record_type, record_id);
CREATE INDEX {p}call_links_record ON {call_links} (record_type, record_id);

CREATE TABLE IF NOT EXISTS {call_notes} (
    id          {pk},
    call_row    BIGINT       NOT NULL,
    author      VARCHAR(191),
    body        TEXT         NOT NULL,
    created_at  {ts} NOT NULL,
    updated_at  {ts} NOT NULL,
    FOREIGN KEY (call_row) REFERENCES {calls} (id) ON DELETE CASCADE
){opts};

CREATE INDEX {p}call_notes_call ON {call_notes} (call_row);

-- Every phone value of the configured CRM records, normalised once. number is
-- E.164, or an internal extension (no '+') for agents' records; NULL when the
-- value could not be made a valid number, so `pbxbridge index stats` can show
-- it. extension is a suffix such as "ext. 3" written after a number.
CREATE TABLE IF NOT EXISTS {phone_index} (
    id            {pk},
    record_type   VARCHAR(64)  NOT NULL,
    record_id     VARCHAR(191) NOT NULL,
    field         VARCHAR(64)  NOT NULL,
    raw           TEXT         NOT NULL,
    number        VARCHAR(32),
    extension     VARCHAR(16),
    display_name  VARCHAR(255)
){opts};

CREATE INDEX {p}phone_index_number ON {phone_index} (number);
CREATE INDEX {p}phone_index_record ON {phone_index} (record_type, record_id);

-- How far each record type's index is built. watermark: the largest
-- updated_at seen, as the CRM's database wrote it as text; the next refresh
-- reads the rows at or after it. The counts are those of the index now;
-- records is the number of CRM rows the last full build read.
CREATE TABLE IF NOT EXISTS {phone_index_state} (
    record_type      VARCHAR(64) NOT NULL PRIMARY KEY,
    built_at         {ts},
    refreshed_at     {ts},
    build_secs       DOUBLE PRECISION NOT NULL DEFAULT 0,
    watermark        VARCHAR(64),
    records          BIGINT NOT NULL DEFAULT 0,
    phone_values     BIGINT NOT NULL DEFAULT 0,
    valid_values     BIGINT NOT NULL DEFAULT 0,
    invalid_values   BIGINT NOT NULL DEFAULT 0,
    extension_values BIGINT NOT NULL DEFAULT 0
){opts};
