-- One row per call. call_id is the natural key: the same call seen twice
-- (a restart, a replayed capture, a second capture point) stays one row.
CREATE TABLE calls (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id                TEXT    NOT NULL UNIQUE,
    direction              TEXT    NOT NULL,
    from_number            TEXT,
    to_number              TEXT,
    from_raw               TEXT,
    to_raw                 TEXT,
    from_display           TEXT,
    agent                  TEXT,
    started_at             TEXT    NOT NULL,
    answered_at            TEXT,
    ended_at               TEXT    NOT NULL,
    duration               REAL    NOT NULL,
    outcome                TEXT    NOT NULL,
    sip_code               INTEGER,
    end_reason             TEXT    NOT NULL,
    answered_elsewhere     INTEGER NOT NULL DEFAULT 0,
    dtmf                   TEXT    NOT NULL DEFAULT '',
    held                   INTEGER NOT NULL DEFAULT 0,
    recording_status       TEXT    NOT NULL,
    recording_path         TEXT,
    recording_codec        TEXT,
    recording_sample_rate  INTEGER,
    recording_channels     INTEGER,
    recording_samples      INTEGER,
    recording_bytes        INTEGER,
    sip_src                TEXT,
    sip_dst                TEXT,
    caller_rtp_packets     INTEGER NOT NULL DEFAULT 0,
    caller_rtp_lost        INTEGER NOT NULL DEFAULT 0,
    caller_rtp_jitter_ms   REAL    NOT NULL DEFAULT 0,
    callee_rtp_packets     INTEGER NOT NULL DEFAULT 0,
    callee_rtp_lost        INTEGER NOT NULL DEFAULT 0,
    callee_rtp_jitter_ms   REAL    NOT NULL DEFAULT 0
);

CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_from_number ON calls (from_number);
CREATE INDEX calls_to_number ON calls (to_number);
CREATE INDEX calls_agent ON calls (agent);
